package node

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	kubeletv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/tasks"
)

const pluginBody = "#!/bin/sh\necho '{}'\n"

// credentialProviders are two providers whose plugins srv serves.
func credentialProviders(srv *testutil.ArtifactServer) []v1alpha1.ImageCredentialProvider {
	url1, sum1 := srv.URLAndSum("/ecr-credential-provider")
	url2, sum2 := srv.URLAndSum("/acr-credential-provider")
	return []v1alpha1.ImageCredentialProvider{
		{Name: "ecr-credential-provider", MatchImages: []string{"*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn"},
			DefaultCacheDuration: "12h", Args: []string{"get-credentials"}, Env: []v1alpha1.CredentialProviderEnv{{Name: "AWS_PROFILE", Value: "nodes"}},
			URL: url1, SHA256: sum1, AllowHTTP: true},
		{Name: "acr-credential-provider", MatchImages: []string{"*.azurecr.io", "registry.example.com:5000/team"},
			DefaultCacheDuration: "0s", APIVersion: "credentialprovider.kubelet.k8s.io/v1beta1",
			URL: url2, SHA256: sum2, AllowHTTP: true},
	}
}

func pluginServer(t *testing.T) *testutil.ArtifactServer {
	return testutil.NewArtifactServer(t, map[string][]byte{
		"/ecr-credential-provider": []byte(pluginBody + "# ecr\n"),
		"/acr-credential-provider": []byte(pluginBody + "# acr\n"),
	})
}

// TestRenderCredentialProviderConfig: the config decodes back strictly into
// the kubelet's own CredentialProviderConfig with every value, in order.
func TestRenderCredentialProviderConfig(t *testing.T) {
	ps := credentialProviders(pluginServer(t))
	data, err := renderCredentialProviderConfig(ps)
	if err != nil {
		t.Fatal(err)
	}
	var got kubeletv1.CredentialProviderConfig
	if err := yaml.UnmarshalStrict(data, &got); err != nil {
		t.Fatalf("strict decode: %v\n%s", err, data)
	}
	if got.APIVersion != "kubelet.config.k8s.io/v1" || got.Kind != "CredentialProviderConfig" || len(got.Providers) != 2 {
		t.Fatalf("decoded %+v", got)
	}
	p0, p1 := got.Providers[0], got.Providers[1]
	if p0.Name != "ecr-credential-provider" || !reflect.DeepEqual(p0.MatchImages, ps[0].MatchImages) || p0.DefaultCacheDuration.Duration != 12*time.Hour ||
		p0.APIVersion != v1alpha1.DefaultCredentialProviderAPIVersion || !reflect.DeepEqual(p0.Args, []string{"get-credentials"}) ||
		!reflect.DeepEqual(p0.Env, []kubeletv1.ExecEnvVar{{Name: "AWS_PROFILE", Value: "nodes"}}) {
		t.Errorf("provider 0: %+v", p0)
	}
	if p1.Name != "acr-credential-provider" || p1.DefaultCacheDuration == nil || p1.DefaultCacheDuration.Duration != 0 ||
		p1.APIVersion != "credentialprovider.kubelet.k8s.io/v1beta1" || p1.Args != nil || p1.Env != nil {
		t.Errorf("provider 1: %+v", p1)
	}
	// Nothing provision-specific (url, sha256) reaches the kubelet's file.
	for _, s := range []string{"url", "sha256", "allowHTTP", "http://"} {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("the kubelet's config holds %q:\n%s", s, data)
		}
	}
	again, _ := renderCredentialProviderConfig(ps)
	if !bytes.Equal(data, again) {
		t.Error("the config is not deterministic")
	}
}

// TestCredentialProviderKubeletFlags: with providers the kubelet's command
// line (and so its drop-in) has both flags, once, pointing at provision's
// paths; without, neither.
func TestCredentialProviderKubeletFlags(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "flatcar")
	cfg.Kubernetes.ImageCredentialProviders = credentialProviders(pluginServer(t))
	n := prepare(t, testOptions(testRoot(t, "flatcar", &cfg), newFakeHost(""), false, nil))
	args := n.kubeletArgs()
	for _, want := range []string{"--image-credential-provider-config=/etc/kubernetes/image-credential-providers.yaml",
		"--image-credential-provider-bin-dir=/opt/provision/credential-providers"} {
		if !slices.Contains(args, want) {
			t.Errorf("kubelet args %v lack %s", args, want)
		}
		if !strings.Contains(string(n.kubeletDropIn()), want) {
			t.Errorf("drop-in lacks %s:\n%s", want, n.kubeletDropIn())
		}
	}
	cfg.Kubernetes.ImageCredentialProviders = nil
	n = prepare(t, testOptions(testRoot(t, "flatcar", &cfg), newFakeHost(""), false, nil))
	if d := string(n.kubeletDropIn()); strings.Contains(d, "image-credential-provider") {
		t.Errorf("drop-in without providers:\n%s", d)
	}
	if ts, _ := n.credentialProviderTasks(); ts != nil {
		t.Errorf("tasks without providers: %v", ts)
	}
}

// TestCredentialProviderPlan: `provision node plan` shows the download and the
// config before the kubelet's config, and the kubelet restarts on a changed
// provider config; a plan fetches nothing.
func TestCredentialProviderPlan(t *testing.T) {
	srv := newArtifactServer(t)
	plugins := pluginServer(t)
	cfg := testConfig(srv, "fedora-coreos")
	cfg.Kubernetes.ImageCredentialProviders = credentialProviders(plugins)
	root := testRoot(t, "fedora-coreos", &cfg)
	opts := testOptions(root, newFakeHost(""), true, nil)
	opts.Flags.Token = testToken
	n := prepare(t, opts)
	entries, err := n.Preview(context.Background(), Base, Join)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n.WritePreview(&out, entries)
	plan := out.String()
	iBins, iCfg, iKubelet := strings.Index(plan, tCredentialProviderBins), strings.Index(plan, tCredentialProviderConfig), strings.Index(plan, tKubeletConfig)
	if iBins < 0 || iCfg < 0 || iBins > iCfg || iCfg > iKubelet {
		t.Errorf("plan:\n%s", plan)
	}
	for _, want := range []string{"download /opt/provision/credential-providers/ecr-credential-provider, /opt/provision/credential-providers/acr-credential-provider",
		"create " + CredentialProviderConfigPath + " (0644)"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if plugins.Total() != 0 {
		t.Errorf("the plan fetched %d plugins", plugins.Total())
	}
	ts, err := n.Tasks(Join)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range ts {
		if s, ok := task.(*tasks.Service); ok && s.Unit == "kubelet.service" && !slices.Contains(s.RestartOn, tCredentialProviderConfig) {
			t.Errorf("the kubelet does not restart on %s: %v", tCredentialProviderConfig, s.RestartOn)
		}
	}
}

// TestCredentialProviderDownload: the plugins land 0755 with the config 0644;
// a re-run fetches and changes nothing; a plugin whose sha256 is not the
// pinned one is refused and leaves nothing (executable or not) behind.
func TestCredentialProviderDownload(t *testing.T) {
	srv := newArtifactServer(t)
	plugins := pluginServer(t)
	cfg := testConfig(srv, "debian-12")
	cfg.Kubernetes.ImageCredentialProviders = credentialProviders(plugins)
	root := testRoot(t, "debian-12", &cfg)
	n := prepare(t, testOptions(root, newFakeHost(""), false, nil))
	list, err := n.credentialProviderTasks()
	if err != nil {
		t.Fatal(err)
	}
	sts, err := tasks.Execute(context.Background(), n.Env, list, false)
	if err != nil {
		t.Fatal(err)
	}
	if tasks.CountChanged(sts) != 2 {
		t.Errorf("first run: %+v", sts)
	}
	for _, name := range []string{"ecr-credential-provider", "acr-credential-provider"} {
		fi, err := os.Stat(filepath.Join(root, CredentialProviderBinDir, name))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", name, fi, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, CredentialProviderConfigPath)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("config: %v %v", fi, err)
	}
	hits := plugins.Total()
	sts, err = tasks.Execute(context.Background(), n.Env, list, false)
	if err != nil || tasks.CountChanged(sts) != 0 || plugins.Total() != hits {
		t.Errorf("re-run: %v, %d changed, %d more requests", err, tasks.CountChanged(sts), plugins.Total()-hits)
	}

	// A wrong pin: refused, nothing left in the directory.
	bad := credentialProviders(plugins)[:1]
	bad[0].SHA256 = strings.Repeat("0", 64)
	cfg.Kubernetes.ImageCredentialProviders = bad
	root = testRoot(t, "debian-12", &cfg)
	n = prepare(t, testOptions(root, newFakeHost(""), false, nil))
	list, err = n.credentialProviderTasks()
	if err != nil {
		t.Fatal(err)
	}
	_, err = tasks.Execute(context.Background(), n.Env, list, false)
	var mm *download.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("wrong sha256: %v", err)
	}
	filepath.WalkDir(filepath.Join(root, "opt"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(root, CredentialProviderConfigPath)); err == nil {
		t.Error("the config was written although its plugin was refused")
	}
}
