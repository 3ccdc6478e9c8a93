package v1alpha1

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/validation"
)

func goodProvider() ImageCredentialProvider {
	return ImageCredentialProvider{
		Name:                 "ecr-credential-provider",
		MatchImages:          []string{"*.dkr.ecr.*.amazonaws.com", "registry.example.com:5000/team", "10.0.0.5:5000", "k8s.*", "app*.k8s.io", "*-registry.example.com"},
		DefaultCacheDuration: "12h",
		Args:                 []string{"get-credentials", "--region=eu-west-1"},
		Env:                  []CredentialProviderEnv{{Name: "AWS_PROFILE", Value: "nodes"}, {Name: "EMPTY", Value: ""}},
		URL:                  "https://artifacts.example.com/ecr-credential-provider",
		SHA256:               strings.Repeat("ab", 32),
	}
}

// TestImageCredentialProvidersValidate: every field's refusal, by path and message.
func TestImageCredentialProvidersValidate(t *testing.T) {
	const lp = "kubernetes.imageCredentialProviders"
	for _, tc := range []struct {
		name    string
		version string // default v1.37.2
		edit    func(p *ImageCredentialProvider)
		list    func(ps []ImageCredentialProvider) []ImageCredentialProvider
		extra   map[string]string
		field   string // "" = valid
		msg     string
	}{
		{name: "good"},
		{name: "v1beta1 plugin API", edit: func(p *ImageCredentialProvider) { p.APIVersion = "credentialprovider.kubelet.k8s.io/v1beta1" }},
		{name: "no caching", edit: func(p *ImageCredentialProvider) { p.DefaultCacheDuration = "0s" }},
		{name: "file URL", edit: func(p *ImageCredentialProvider) { p.URL = "file:///opt/bundle/ecr-credential-provider" }},
		{name: "http allowed", edit: func(p *ImageCredentialProvider) { p.URL = "http://mirror.internal/p"; p.AllowHTTP = true }},
		{name: "1.26", version: "v1.26.0"},
		{name: "kubelet 1.25", version: "v1.25.16", field: lp, msg: "kubelet v1.25.16 (1.25) reads no kubelet.config.k8s.io/v1 CredentialProviderConfig: image credential providers need kubelet 1.26 or newer"},
		{name: "kubelet 1.21", version: "v1.21.14", field: lp, msg: "need kubelet 1.26"},
		{name: "too many", list: func(ps []ImageCredentialProvider) []ImageCredentialProvider {
			for i := 0; i < MaxCredentialProviders; i++ {
				p := goodProvider()
				p.Name = "p" + strings.Repeat("x", i+1)
				ps = append(ps, p)
			}
			return ps
		}, field: lp, msg: "at most 16"},
		{name: "extra arg config", extra: map[string]string{"image-credential-provider-config": "/x.yaml"}, field: "kubernetes.kubeletExtraArgs[image-credential-provider-config]", msg: "set by provision"},
		{name: "extra arg bin dir", extra: map[string]string{"image-credential-provider-bin-dir": "/x"}, field: "kubernetes.kubeletExtraArgs[image-credential-provider-bin-dir]", msg: "drop one of them"},
		{name: "name missing", edit: func(p *ImageCredentialProvider) { p.Name = "" }, field: lp + "[0].name", msg: "is required"},
		{name: "name slash", edit: func(p *ImageCredentialProvider) { p.Name = "../bin/sh" }, field: lp + "[0].name", msg: "plain file name"},
		{name: "name space", edit: func(p *ImageCredentialProvider) { p.Name = "my plugin" }, field: lp + "[0].name", msg: "plain file name"},
		{name: "name dot", edit: func(p *ImageCredentialProvider) { p.Name = ".." }, field: lp + "[0].name", msg: "plain file name"},
		{name: "name hidden", edit: func(p *ImageCredentialProvider) { p.Name = ".plugin" }, field: lp + "[0].name", msg: "plain file name"},
		{name: "name duplicate", list: func(ps []ImageCredentialProvider) []ImageCredentialProvider { return append(ps, goodProvider()) },
			field: lp + "[1].name", msg: "repeats the name of imageCredentialProviders[0]"},
		{name: "matchImages missing", edit: func(p *ImageCredentialProvider) { p.MatchImages = nil }, field: lp + "[0].matchImages", msg: "is required"},
		{name: "matchImages scheme", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"https://gcr.io"} }, field: lp + "[0].matchImages[0]", msg: "without a scheme"},
		{name: "matchImages space", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"gcr .io"} }, field: lp + "[0].matchImages[0]", msg: "without spaces"},
		{name: "matchImages empty", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{""} }, field: lp + "[0].matchImages[0]", msg: "image pattern"},
		{name: "matchImages port glob", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"gcr.io:*"} }, field: lp + "[0].matchImages[0]", msg: "image pattern"},
		{name: "matchImages port range", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"gcr.io:70000"} }, field: lp + "[0].matchImages[0]", msg: "port is a number from 1 to 65535"},
		{name: "matchImages empty part", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"gcr..io"} }, field: lp + "[0].matchImages[0]", msg: "non-empty"},
		{name: "matchImages bad glob", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"[a-c].example.com"} }, field: lp + "[0].matchImages[0]", msg: "image pattern"},
		{name: "matchImages credentials", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"u:p@gcr.io"} }, field: lp + "[0].matchImages[0]", msg: "without credentials"},
		{name: "matchImages question mark", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"reg?.example.com"} }, field: lp + "[0].matchImages[0]", msg: "query"},
		{name: "matchImages query", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"gcr.io/x?y"} }, field: lp + "[0].matchImages[0]", msg: "query"},
		{name: "matchImages second", edit: func(p *ImageCredentialProvider) { p.MatchImages = []string{"gcr.io", "gcr.io/a b"} }, field: lp + "[0].matchImages[1]", msg: "without spaces"},
		{name: "cache missing", edit: func(p *ImageCredentialProvider) { p.DefaultCacheDuration = "" }, field: lp + "[0].defaultCacheDuration", msg: "is required"},
		{name: "cache form", edit: func(p *ImageCredentialProvider) { p.DefaultCacheDuration = "12 hours" }, field: lp + "[0].defaultCacheDuration", msg: "a duration such as 12h"},
		{name: "cache negative", edit: func(p *ImageCredentialProvider) { p.DefaultCacheDuration = "-1m" }, field: lp + "[0].defaultCacheDuration", msg: "must not be negative"},
		{name: "apiVersion", edit: func(p *ImageCredentialProvider) { p.APIVersion = "credentialprovider.kubelet.k8s.io/v2" }, field: lp + "[0].apiVersion", msg: "must be one of credentialprovider.kubelet.k8s.io/v1, "},
		{name: "apiVersion client-go", edit: func(p *ImageCredentialProvider) { p.APIVersion = "client.authentication.k8s.io/v1" }, field: lp + "[0].apiVersion", msg: "the plugin API versions the kubelet takes"},
		{name: "arg control", edit: func(p *ImageCredentialProvider) { p.Args = []string{"ok", "a\nb"} }, field: lp + "[0].args[1]", msg: "without control characters"},
		{name: "arg long", edit: func(p *ImageCredentialProvider) { p.Args = []string{strings.Repeat("a", 4097)} }, field: lp + "[0].args[0]", msg: "at most 4096"},
		{name: "arg invalid UTF-8", edit: func(p *ImageCredentialProvider) { p.Args = []string{"\xff"} }, field: lp + "[0].args[0]", msg: "without control characters"},
		{name: "env name", edit: func(p *ImageCredentialProvider) { p.Env = []CredentialProviderEnv{{Name: "1X", Value: "v"}} }, field: lp + "[0].env[0].name", msg: "environment variable name"},
		{name: "env name empty", edit: func(p *ImageCredentialProvider) { p.Env = []CredentialProviderEnv{{Value: "v"}} }, field: lp + "[0].env[0].name", msg: "environment variable name"},
		{name: "env duplicate", edit: func(p *ImageCredentialProvider) { p.Env = []CredentialProviderEnv{{Name: "A"}, {Name: "A"}} }, field: lp + "[0].env[1].name", msg: "repeats A"},
		{name: "env value", edit: func(p *ImageCredentialProvider) { p.Env = []CredentialProviderEnv{{Name: "A", Value: "x\x00"}} }, field: lp + "[0].env[0].value", msg: "without control characters"},
		{name: "url missing", edit: func(p *ImageCredentialProvider) { p.URL = "" }, field: lp + "[0].url", msg: "is required"},
		{name: "url http", edit: func(p *ImageCredentialProvider) { p.URL = "http://mirror.internal/p" }, field: lp + "[0].url", msg: "plain http only with allowHTTP"},
		{name: "url ftp", edit: func(p *ImageCredentialProvider) { p.URL = "ftp://mirror.internal/p" }, field: lp + "[0].url", msg: "must be an https://"},
		{name: "url credentials", edit: func(p *ImageCredentialProvider) { p.URL = "https://u:s3cr3t@mirror.internal/p" }, field: lp + "[0].url", msg: "must not carry credentials"},
		{name: "sha256 missing", edit: func(p *ImageCredentialProvider) { p.SHA256 = "" }, field: lp + "[0].sha256", msg: "never run unverified"},
		{name: "sha256 form", edit: func(p *ImageCredentialProvider) { p.SHA256 = strings.Repeat("AB", 32) }, field: lp + "[0].sha256", msg: "64 lower-case hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := goodProvider()
			if tc.edit != nil {
				tc.edit(&p)
			}
			ps := []ImageCredentialProvider{p}
			if tc.list != nil {
				ps = tc.list(ps)
			}
			v := tc.version
			if v == "" {
				v = "v1.37.2"
			}
			es := validateImageCredentialProviders("kubernetes", v, ps, tc.extra)
			if tc.field == "" {
				if len(es) != 0 {
					t.Fatalf("valid providers refused: %v", es)
				}
				return
			}
			if len(es) != 1 || es[0].Field != tc.field || !strings.Contains(es[0].Message, tc.msg) {
				t.Fatalf("errors %v, want one at %s containing %q", es, tc.field, tc.msg)
			}
			if strings.Contains(es.Error(), "s3cr3t") {
				t.Errorf("the error quotes a URL's credentials: %v", es)
			}
		})
	}
}

// TestImageCredentialProvidersPaths: the node config and the GenerateConfig
// report the providers' errors at their own paths.
func TestImageCredentialProvidersPaths(t *testing.T) {
	bad := goodProvider()
	bad.SHA256 = ""
	gc := GenerateConfig{KubeletVersion: "v1.37.2", ImageCredentialProviders: []ImageCredentialProvider{bad}}
	k := Kubernetes{Version: "v1.37.2", ImageCredentialProviders: []ImageCredentialProvider{bad}}
	for _, c := range []struct {
		es   validation.Errors
		want string
	}{
		{gc.Validate(""), "imageCredentialProviders[0].sha256"},
		{k.Validate("kubernetes"), "kubernetes.imageCredentialProviders[0].sha256"},
	} {
		found := false
		for _, e := range c.es {
			found = found || e.Field == c.want
		}
		if !found {
			t.Errorf("no error at %s in %v", c.want, c.es)
		}
	}
}

// TestMatchImage: the kubelet's examples (config/v1 types) are accepted.
func TestMatchImage(t *testing.T) {
	for _, m := range []string{"123456789.dkr.ecr.us-east-1.amazonaws.com", "*.azurecr.io", "gcr.io", "*.*.registry.io", "registry.io:8080/path",
		"k8s.*", "app*.k8s.io", "[::1]:5000", "localhost", "*"} {
		if msg := MatchImage(m); msg != "" {
			t.Errorf("%s: %s", m, msg)
		}
	}
}
