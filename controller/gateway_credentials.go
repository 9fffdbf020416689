package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// notebookCredential is a notebook server and its token, for its gateway's credentials.
type notebookCredential struct {
	notebook *ejv1.JupyterNotebook
	token    []byte
}

// desiredGatewayCredentials is the gateway's credentials Secret: for each notebook server that
// uses it, the hash of the notebook's own token and who the notebook is.
func desiredGatewayCredentials(gw *ejv1.JupyterGateway, creds []notebookCredential) (*corev1.Secret, error) {
	data := map[string][]byte{}
	for _, c := range creds {
		sum := sha256.Sum256(c.token)
		entry, err := json.Marshal(ejv1.GatewayCredential{
			SHA256: hex.EncodeToString(sum[:]), Identity: NotebookIdentity(c.notebook), User: NotebookUser(c.notebook),
		})
		if err != nil {
			return nil, err
		}
		data[c.notebook.Namespace+"."+c.notebook.Name] = entry
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: ejv1.GatewayCredentialsSecretName(gw.Name), Namespace: gw.Namespace,
			Labels: commonLabels(ejv1.ComponentGateway, gw.Name),
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}, nil
}

// notebookCredentials are the notebooks that use gw, with their own gateway tokens (notebooks
// whose token is not made yet come on a later reconcile, which its creation triggers).
func (r *GatewayReconciler) notebookCredentials(ctx context.Context, gw *ejv1.JupyterGateway) ([]notebookCredential, error) {
	list := &ejv1.JupyterNotebookList{}
	if err := r.List(ctx, list, client.MatchingFields{indexNotebookGateway: client.ObjectKeyFromObject(gw).String()}); err != nil {
		return nil, fmt.Errorf("listing the gateway's notebooks: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return NotebookIdentity(&list.Items[i]) < NotebookIdentity(&list.Items[j]) })
	var out []notebookCredential
	for i := range list.Items {
		nb := &list.Items[i]
		if !nb.DeletionTimestamp.IsZero() {
			continue
		}
		s := &corev1.Secret{}
		err := r.Get(ctx, types.NamespacedName{Namespace: nb.Namespace, Name: nb.Name + NotebookGatewayTokenSuffix}, s)
		if client.IgnoreNotFound(err) != nil {
			return nil, err
		}
		if err != nil || s.Annotations[ejv1.AnnotationCredential] != CredentialNotebook || len(s.Data[TokenKey]) == 0 {
			continue
		}
		out = append(out, notebookCredential{notebook: nb, token: s.Data[TokenKey]})
	}
	return out, nil
}

// gatewayOfNotebook maps a notebook to the gateway it uses.
func gatewayOfNotebook(_ context.Context, o client.Object) []reconcile.Request {
	nb, ok := o.(*ejv1.JupyterNotebook)
	if !ok || nb.Spec.Gateway == nil || nb.Spec.Gateway.Name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: notebookGatewayKey(nb)}}
}

// gatewayOfCredential maps a notebook's gateway token Secret to the gateway it is for.
func gatewayOfCredential(_ context.Context, o client.Object) []reconcile.Request {
	if o.GetAnnotations()[ejv1.AnnotationCredential] != CredentialNotebook || o.GetLabels()[ejv1.LabelGateway] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{
		Namespace: o.GetAnnotations()[ejv1.AnnotationGatewayNamespace], Name: o.GetLabels()[ejv1.LabelGateway],
	}}}
}
