package generate

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

// credentialProvidersSpec is the README example with an ECR-style plugin.
func credentialProvidersSpec(t testing.TB, os string) v1alpha1.GenerateConfig {
	s := readmeSpec(t, os)
	s.ImageCredentialProviders = []v1alpha1.ImageCredentialProvider{{
		Name:                 "ecr-credential-provider",
		MatchImages:          []string{"*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn"},
		DefaultCacheDuration: "12h",
		Args:                 []string{"get-credentials"},
		Env:                  []v1alpha1.CredentialProviderEnv{{Name: "AWS_PROFILE", Value: "nodes"}},
		URL:                  "https://artifacts.example.com/ecr-credential-provider/v1.31.0/ecr-credential-provider-linux-amd64",
		SHA256:               strings.Repeat("ef", 32),
	}}
	return s
}

var credentialProvidersCases = []struct {
	os     string
	format osprofiles.Format
}{
	{"ubuntu-22.04", osprofiles.CloudInit},
	{"flatcar", osprofiles.Ignition},
	{"flatcar", osprofiles.Butane},
}

// TestCredentialProvidersGolden: the providers reach node.yaml in every
// format (-update rewrites), and the real validators accept the outputs:
// cloud-init's schema, Ignition's parser, Butane's translator (to exactly the
// rendered Ignition); each decodes back to the plan.
func TestCredentialProvidersGolden(t *testing.T) {
	for _, c := range credentialProvidersCases {
		t.Run(c.os+"/"+string(c.format), func(t *testing.T) {
			s := credentialProvidersSpec(t, c.os)
			out, err := Render(s, c.format)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", "credentialproviders", filepath.Base(goldenName(c.os, c.format))), out)
			realValidators(t, s, c.format, out)
			p, err := BuildPlan(s)
			if err != nil {
				t.Fatal(err)
			}
			prof, _ := osprofiles.Get(c.os)
			compareMachines(t, decodeAny(t, out, c.format, prof, "", false), expected(p))
		})
	}
}

// TestCredentialProvidersNodeConfig: node.yaml carries the providers as given,
// and the node config validates.
func TestCredentialProvidersNodeConfig(t *testing.T) {
	s := credentialProvidersSpec(t, "ubuntu-24.04")
	p, err := BuildPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		if f.Path != v1alpha1.NodeConfigPath {
			continue
		}
		var nc v1alpha1.NodeConfig
		if err := yaml.UnmarshalStrict(f.Contents, &nc); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(nc.Kubernetes.ImageCredentialProviders, s.ImageCredentialProviders) {
			t.Errorf("node.yaml providers %+v", nc.Kubernetes.ImageCredentialProviders)
		}
		if es := nc.Validate(""); len(es) > 0 {
			t.Errorf("node.yaml: %v", es)
		}
		return
	}
	t.Fatal("no node.yaml")
}

// TestCredentialProvidersInvalid: refusals name the config file's field (no
// flag: config file only), including a kubelet older than 1.26.
func TestCredentialProvidersInvalid(t *testing.T) {
	for _, tc := range []struct {
		edit  func(s *v1alpha1.GenerateConfig)
		field string
		msg   string
	}{
		{func(s *v1alpha1.GenerateConfig) { s.ImageCredentialProviders[0].SHA256 = "" }, "imageCredentialProviders[0].sha256", "is required"},
		{func(s *v1alpha1.GenerateConfig) { s.ImageCredentialProviders[0].Name = "a/b" }, "imageCredentialProviders[0].name", "plain file name"},
		{func(s *v1alpha1.GenerateConfig) { s.ImageCredentialProviders[0].MatchImages[1] = "https://gcr.io" }, "imageCredentialProviders[0].matchImages[1]", "without a scheme"},
		{func(s *v1alpha1.GenerateConfig) { s.KubeletVersion = "v1.25.16" }, "imageCredentialProviders", "need kubelet 1.26 or newer"},
	} {
		s := credentialProvidersSpec(t, "ubuntu-24.04")
		tc.edit(&s)
		_, err := Render(s, "")
		es, ok := validation.AsErrors(err)
		found := false
		for _, e := range es {
			found = found || (e.Field == tc.field && e.Flag == "" && strings.Contains(e.Message, tc.msg))
		}
		if !ok || !found {
			t.Errorf("%s: %s", tc.field, fmt.Sprint(err))
		}
	}
}
