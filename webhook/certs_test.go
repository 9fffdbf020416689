package webhook_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// newCA returns a CA certificate and key.
func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rotated test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return ca, key
}

// newServingCert returns a serving certificate for host signed by ca, and its key, PEM-encoded,
// with the certificate's serial number.
func newServingCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, host string) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err = rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), serial
}

// writeAtomically replaces a file the way a kubelet updates a mounted Secret: a new file
// renamed over the old one.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// The serving certificate is rotated on disk, as cert-manager and the kubelet do it: the
// webhook serves the new one without a restart, and once the webhook configurations trust the
// new CA (cert-manager's CA injector does this), the API server admits kernel pods through it.
func TestCertificateRotationIsPickedUp(t *testing.T) {
	wh := env.Envtest.WebhookInstallOptions
	addr := net.JoinHostPort(wh.LocalServingHost, strconv.Itoa(wh.LocalServingPort))
	ca, caKey := newCA(t)
	certPEM, keyPEM, serial := newServingCert(t, ca, caKey, wh.LocalServingHost)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	servesNewCert := func() bool {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: wh.LocalServingHost, MinVersion: tls.VersionTLS12})
		if err != nil {
			return false // still the old certificate, which the new CA does not sign
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(serial) == 0
	}
	require.False(t, servesNewCert())

	writeAtomically(t, filepath.Join(wh.LocalServingCertDir, "tls.key"), keyPEM)
	writeAtomically(t, filepath.Join(wh.LocalServingCertDir, "tls.crt"), certPEM)
	require.Eventually(t, servesNewCert, time.Minute, 100*time.Millisecond, "the webhook serves the rotated certificate without a restart")

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	mutating := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	require.NoError(t, env.Client.List(ctx(t), mutating))
	for _, m := range mutating.Items {
		for i := range m.Webhooks {
			m.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		require.NoError(t, env.Client.Update(ctx(t), &m))
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
	require.NoError(t, env.Client.List(ctx(t), validating))
	for _, v := range validating.Items {
		for i := range v.Webhooks {
			v.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		require.NoError(t, env.Client.Update(ctx(t), &v))
	}
	var last error
	assert.Eventually(t, func() bool {
		pod := kernelPodFor("team-a", "k-rotated", "absent")
		last = env.Client.Create(ctx(t), pod, client.DryRunAll)
		return last == nil && len(pod.Spec.InitContainers) == 1
	}, time.Minute, 100*time.Millisecond, "kernel pods are mutated through the rotated certificate")
	require.NoError(t, last)
}
