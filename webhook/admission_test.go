package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	ejscheme "github.com/elastic-jupyter/elastic-jupyter/internal/scheme"
)

// testDeps reads from a fake API server that has objs and no team policy; get, if set,
// intercepts its reads.
func testDeps(t *testing.T, get func(client.Object) error, objs ...client.Object) (*deps, *runtime.Scheme) {
	t.Helper()
	scheme, err := ejscheme.New()
	require.NoError(t, err)
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...)
	if get != nil {
		b = b.WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := get(obj); err != nil {
				return err
			}
			return c.Get(ctx, key, obj, opts...)
		}})
	}
	c := b.Build()
	return &deps{cache: c, live: c, log: logr.Discard(), opts: MutateOptions{LauncherImage: "example.com/launcher:test"},
		policy: &PolicyStore{Reader: c, Key: types.NamespacedName{Namespace: "elastic-jupyter-system", Name: DefaultPolicyConfigMap}}}, scheme
}

// request is a CREATE of raw in namespace ns.
func request(ns string, raw string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Operation: admissionv1.Create, Namespace: ns, Object: runtime.RawExtension{Raw: []byte(raw)},
	}}
}

// A kernel pod sent without its namespace, with a field corev1.Pod lacks: the mutation reads
// the request's namespace, answers with its warnings, and its patch keeps the unknown field.
func TestKernelPodMutationKeepsUnknownFieldsAndWarns(t *testing.T) {
	d, scheme := testDeps(t, nil)
	wh := (&KernelPodWebhook{deps: d}).mutatingWebhook(scheme)
	resp := wh.Handle(context.Background(), request("team-a", `{"apiVersion":"v1","kind":"Pod",
		"metadata":{"name":"k","labels":{"`+ejv1.LabelComponent+`":"`+ejv1.ComponentKernel+`"},"annotations":{"`+ejv1.AnnotationKernelSpec+`":"gone","`+ejv1.AnnotationConnectionSecret+`":"k-connection"}},
		"spec":{"futureField":{"on":true},"containers":[{"name":"`+ejv1.KernelContainerName+`","image":"python:3","command":["python3","-m","ipykernel_launcher","-f","{connection_file}"],"futureField":1}]}}`))
	require.True(t, resp.Allowed, "%+v", resp.Result)
	require.NotEmpty(t, resp.Patches)
	var paths []string
	for _, p := range resp.Patches {
		paths = append(paths, p.Operation+" "+p.Path)
		assert.NotContains(t, p.Path, "futureField", "a field the Go type lacks is left alone: %s %s", p.Operation, p.Path)
	}
	assert.Contains(t, paths, "add /spec/initContainers", "the pod was mutated")
	assert.Contains(t, strings.Join(resp.Warnings, "\n"), "JupyterKernelSpec team-a/gone not found", "the request's namespace, and the mutation's warning")
}

func TestPodsThatAreNotOursAreLeftAlone(t *testing.T) {
	d, scheme := testDeps(t, nil)
	w := &KernelPodWebhook{deps: d}
	for name, raw := range map[string]string{
		"not a kernel pod": `{"metadata":{"name":"web"},"spec":{"containers":[{"name":"web","image":"nginx"}]}}`,
		"mutated already": `{"metadata":{"name":"k","labels":{"` + ejv1.LabelComponent + `":"` + ejv1.ComponentKernel + `"},
			"annotations":{"` + ejv1.AnnotationLauncherInjected + `":"true"}},"spec":{"containers":[{"name":"kernel","image":"python:3"}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			resp := w.mutatingWebhook(scheme).Handle(context.Background(), request("team-a", raw))
			assert.True(t, resp.Allowed)
			assert.Empty(t, resp.Patches)
			assert.Empty(t, resp.Warnings)
		})
	}
}

// A policy that cannot be read refuses with the whole message (403), not with the status of
// the API error it wraps.
func TestRefusalsKeepTheirMessage(t *testing.T) {
	forbidden := func(obj client.Object) error {
		if _, ok := obj.(*corev1.ConfigMap); ok {
			return apierrors.NewForbidden(corev1.Resource("configmaps"), DefaultPolicyConfigMap, nil)
		}
		return nil
	}
	d, scheme := testDeps(t, forbidden)
	pod := `{"metadata":{"name":"k","labels":{"` + ejv1.LabelComponent + `":"` + ejv1.ComponentKernel + `"}},"spec":{"containers":[{"name":"kernel","image":"python:3"}]}}`
	for name, wh := range map[string]*admission.Webhook{
		"mutation":   (&KernelPodWebhook{deps: d}).mutatingWebhook(scheme),
		"validation": admission.WithValidator[*corev1.Pod](scheme, &KernelPodWebhook{deps: d}),
	} {
		t.Run(name, func(t *testing.T) {
			resp := wh.Handle(context.Background(), request("team-a", pod))
			assert.False(t, resp.Allowed)
			assert.Equal(t, int32(http.StatusForbidden), resp.Result.Code)
			assert.Contains(t, resp.Result.Message, "reading the team policy ConfigMap elastic-jupyter-system/"+DefaultPolicyConfigMap)
		})
	}
}

// The validation of a kind refuses as Invalid, naming every field; an update of an object on
// its way out is never refused; a deletion is never refused.
func TestKindValidation(t *testing.T) {
	d, scheme := testDeps(t, nil)
	wh := admission.WithValidator[*ejv1.JupyterGateway](scheme, newGatewayWebhook(d))
	gw := &ejv1.JupyterGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}}
	gw.Spec.Kernels = []string{"python3"}
	bad := "r"
	gw.Spec.DefaultKernel = &bad
	raw, err := json.Marshal(gw)
	require.NoError(t, err)

	resp := wh.Handle(context.Background(), request("team-a", string(raw)))
	assert.False(t, resp.Allowed)
	assert.Equal(t, metav1.StatusReasonInvalid, resp.Result.Reason)
	assert.Contains(t, resp.Result.Message, "spec.defaultKernel")
	require.NotNil(t, resp.Result.Details)
	assert.Equal(t, "JupyterGateway", resp.Result.Details.Kind)

	now := metav1.Now()
	gw.DeletionTimestamp = &now
	leaving, err := json.Marshal(gw)
	require.NoError(t, err)
	update := request("team-a", string(leaving))
	update.Operation, update.OldObject = admissionv1.Update, runtime.RawExtension{Raw: raw}
	assert.True(t, wh.Handle(context.Background(), update).Allowed, "an object on its way out")

	del := request("team-a", "")
	del.Operation, del.OldObject = admissionv1.Delete, runtime.RawExtension{Raw: raw}
	assert.True(t, wh.Handle(context.Background(), del).Allowed)
}
