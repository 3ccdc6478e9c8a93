package controller_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/provision-dev/provision/api/v1alpha1"
	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/controller"
	"github.com/provision-dev/provision/capi/internal/testca"
	"github.com/provision-dev/provision/capi/internal/validators"
)

const (
	regHost     = "registry.example.com:5000"
	regPassword = "ctrlPa55-MARKER"
	regToken    = "ctrlT0ken-MARKER"
)

// TestRegistryCredentialsFromSecret: a config whose registries reference a
// Secret and a ConfigMap waits, naming them, until they exist; then the
// userdata's registry-credentials.json holds the Secret's values and the CA
// file the ConfigMap's, while the config's status, the namespace's events and
// the controller's logs hold neither credential.
func TestRegistryCredentialsFromSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	spec := ubuntuSpec()
	spec.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://" + regHost}}
	spec.Containerd.Registries = map[string]bootstrapv1.Registry{
		regHost: {
			CACertFrom:           &bootstrapv1.CACertSource{ConfigMapKeyRef: &bootstrapv1.KeyRef{Name: "registry-ca", Key: "ca.crt"}},
			CredentialsSecretRef: &bootstrapv1.RegistryCredentialsSecretRef{Name: "registry-auth"}, // basic-auth's keys
		},
		"ghcr.io": {CredentialsSecretRef: &bootstrapv1.RegistryCredentialsSecretRef{Name: "ghcr", IdentityTokenKey: "token"}},
	}
	m := f.machine("worker-0", version)
	pc := f.config(m.Name, m, "Machine", spec)

	// Nothing referenced exists yet: the config waits and says for what.
	pc = f.waitConfig(pc.Name, "waiting", 15*time.Second,
		hasCondition(bootstrapv1.DataSecretAvailableCondition, metav1.ConditionFalse, bootstrapv1.WaitingForRegistryReferenceReason))
	msg := condition(pc, bootstrapv1.DataSecretAvailableCondition).Message
	for _, want := range []string{"ConfigMap registry-ca not found", "secret registry-auth not found", "secret ghcr not found"} {
		if !strings.Contains(msg, want) {
			t.Errorf("condition %q does not say %q", msg, want)
		}
	}
	if pc.Status.BootstrapTokenID != "" || f.secret(f.ns, pc.Name) != nil {
		t.Errorf("a token or data before the references exist: %+v", pc.Status)
	}

	ca := testca.New(t).CertPEM
	f.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "registry-ca", Namespace: f.ns}, Data: map[string]string{"ca.crt": string(ca)}})
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "registry-auth", Namespace: f.ns}, Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{corev1.BasicAuthUsernameKey: []byte("puller"), corev1.BasicAuthPasswordKey: []byte(regPassword)}})
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ghcr", Namespace: f.ns}, Data: map[string][]byte{"token": []byte(regToken)}})
	// The references are not watched: a touch of the config reconciles it now
	// (else the 30 s requeue does).
	touched := f.getConfig(pc.Name)
	touched.Annotations = map[string]string{"test/touch": "1"}
	if err := f.c.Update(f.ctx, touched); err != nil {
		t.Fatal(err)
	}
	pc = f.waitConfig(pc.Name, "rendered", 30*time.Second, dataSecretCreated)

	s := f.secret(f.ns, pc.Status.DataSecretName)
	validators.Userdata(t, bootstrapv1.FormatCloudConfig, s.Data["value"])
	files := validators.Files(t, bootstrapv1.FormatCloudConfig, s.Data["value"])
	creds, err := v1alpha1.ParseRegistryCredentials(files[v1alpha1.RegistryCredentialsPath])
	if err != nil {
		t.Fatalf("%s: %v", v1alpha1.RegistryCredentialsPath, err)
	}
	want := v1alpha1.RegistryCredentials{regHost: {Username: "puller", Password: regPassword}, "ghcr.io": {IdentityToken: regToken}}
	if !reflect.DeepEqual(creds, want) {
		t.Errorf("%s does not hold the Secrets' values", v1alpha1.RegistryCredentialsPath)
	}
	if string(files[v1alpha1.RegistryCAPath(regHost)]) != string(ca) {
		t.Errorf("%s is not the ConfigMap's CA", v1alpha1.RegistryCAPath(regHost))
	}
	if node := string(files[v1alpha1.NodeConfigPath]); strings.Contains(node, regPassword) || strings.Contains(node, regToken) {
		t.Error("node.yaml holds a credential")
	}

	// No credential outside the data Secret: the config (status included),
	// the events of the namespace, the controller's logs.
	status, _ := json.Marshal(f.getConfig(pc.Name))
	events := &corev1.EventList{}
	if err := f.c.List(f.ctx, events, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	evs, _ := json.Marshal(events)
	for what, text := range map[string]string{"the ProvisionConfig": string(status), "events": string(evs), "the controller's logs": controllerLogs.String()} {
		if strings.Contains(text, regPassword) || strings.Contains(text, regToken) {
			t.Errorf("%s show a registry credential", what)
		}
	}
	if !strings.Contains(controllerLogs.String(), "wrote userdata") {
		t.Errorf("the log capture saw nothing of the controller: the check above proves nothing")
	}
}

// TestRegistryCRDValidation: the API server refuses a registry that gives
// the CA twice, a CA with skipVerify, a CA source naming both or neither
// kind, credentials keys mixing a token with a username or password, or
// nothing at all.
func TestRegistryCRDValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{})
	ref := &bootstrapv1.KeyRef{Name: "ca", Key: "ca.crt"}
	for i, tc := range []struct {
		reg  bootstrapv1.Registry
		want string
	}{
		{bootstrapv1.Registry{CACert: "pem", CACertFrom: &bootstrapv1.CACertSource{SecretKeyRef: ref}}, "not both"},
		{bootstrapv1.Registry{CACert: "pem", SkipVerify: true}, "skipVerify cannot be combined with a CA"},
		{bootstrapv1.Registry{CACertFrom: &bootstrapv1.CACertSource{SecretKeyRef: ref, ConfigMapKeyRef: ref}}, "exactly one of configMapKeyRef and secretKeyRef"},
		{bootstrapv1.Registry{CACertFrom: &bootstrapv1.CACertSource{}}, "exactly one of configMapKeyRef and secretKeyRef"},
		{bootstrapv1.Registry{CredentialsSecretRef: &bootstrapv1.RegistryCredentialsSecretRef{Name: "s", IdentityTokenKey: "t", PasswordKey: "p"}}, "identityTokenKey excludes usernameKey and passwordKey"},
		{bootstrapv1.Registry{}, "should have at least 1 properties"},
	} {
		spec := ubuntuSpec()
		spec.Containerd.Registries = map[string]bootstrapv1.Registry{regHost: tc.reg}
		pc := &bootstrapv1.ProvisionConfig{ObjectMeta: metav1.ObjectMeta{Name: "bad-" + string(rune('a'+i)), Namespace: f.ns}, Spec: spec}
		if err := f.c.Create(f.ctx, pc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.reg, err, tc.want)
		}
	}
}
