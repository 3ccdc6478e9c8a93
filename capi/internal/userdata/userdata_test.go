package userdata

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/randfill"

	"github.com/provision-dev/provision/api/v1alpha1"
	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/testca"
	"github.com/provision-dev/provision/capi/internal/validators"
)

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestEveryGenerateConfigFieldAccountedFor: a field added to provision's
// GenerateConfig fails here until the ProvisionConfig offers it (SpecFields),
// derives it (Sources) or says why not (Excluded).
func TestEveryGenerateConfigFieldAccountedFor(t *testing.T) {
	seen := map[string]string{}
	for _, f := range SpecFields() {
		seen[f] = "SpecFields"
	}
	for _, set := range []struct {
		name string
		m    map[string]string
	}{{"Sources", Sources}, {"Excluded", Excluded}} {
		for f := range set.m {
			if prev, ok := seen[f]; ok {
				t.Errorf("%s is in both %s and %s", f, prev, set.name)
			}
			seen[f] = set.name
		}
	}
	gc := jsonFields(reflect.TypeFor[v1alpha1.GenerateConfig]())
	for _, f := range gc {
		if _, ok := seen[f]; !ok {
			t.Errorf("GenerateConfig.%s is new: offer it in ProvisionConfigSpec (SpecFields, GenerateConfig()), derive it (Sources) or exclude it (Excluded)", f)
		}
	}
	for f, where := range seen {
		if !slices.Contains(gc, f) {
			t.Errorf("%s (%s) is not a GenerateConfig field any more", f, where)
		}
	}
	spec := jsonFields(reflect.TypeFor[bootstrapv1.ProvisionConfigSpec]())
	want := slices.Sorted(slices.Values(append(SpecFields(), "hostname"))) // hostname: the policy, not the name
	if !slices.Equal(spec, want) {
		t.Errorf("ProvisionConfigSpec fields %v, want SpecFields + hostname %v", spec, want)
	}
}

// TestGenerateConfigCarriesTheSpec: every offered field arrives in the
// GenerateConfig with its value, nested types included (random specs).
func TestGenerateConfigCarriesTheSpec(t *testing.T) {
	f := randfill.NewWithSeed(1).NilChance(0.2).NumElements(0, 3).Funcs(
		func(r *runtime.RawExtension, c randfill.Continue) { // a kubeletConfig is a JSON object
			r.Raw = fmt.Appendf(nil, `{"maxPods":%d,"featureGates":{"G%d":true}}`, c.Intn(500), c.Intn(9))
		})
	for i := range 200 {
		var spec bootstrapv1.ProvisionConfigSpec
		f.Fill(&spec)
		// The spec's JSON decoded as a GenerateConfig (the field names are the
		// same) is what the conversion must produce, but the proxy: its URLs
		// come from Secret references (the cluster's values here).
		proxy := spec.Proxy
		spec.Proxy = nil
		var want v1alpha1.GenerateConfig
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		want.APIVersion, want.Kind, want.Hostname = v1alpha1.APIVersion, v1alpha1.GenerateConfigKind, ""
		want.BootstrapSentinel = true // always: the contract's sentinel
		c := Cluster{HTTPProxy: fmt.Sprintf("http://p%d:3128", i), HTTPSProxy: fmt.Sprintf("http://s%d:3128", i)}
		if spec.Proxy = proxy; proxy != nil {
			want.Proxy.NoProxy = proxy.NoProxy
			if proxy.HTTPProxy != nil {
				want.Proxy.HTTPProxy = c.HTTPProxy
			}
			if proxy.HTTPSProxy != nil {
				want.Proxy.HTTPSProxy = c.HTTPSProxy
			}
		}
		got, err := GenerateConfig(spec, c)
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(got, want) {
			t.Fatalf("spec %d: %s", i, cmp.Diff(want, got))
		}
	}
}

func cluster(t testing.TB) Cluster {
	return Cluster{
		KubeletVersion: "v1.37.2",
		APIServerURL:   "https://10.0.0.10:6443",
		CACert:         testca.New(t).CertPEM,
		Token:          "abcdef.0123456789abcdef",
		Hostname:       "md-0-x7k2p",
	}
}

func validSpec(os string) bootstrapv1.ProvisionConfigSpec {
	return bootstrapv1.ProvisionConfigSpec{
		OS:                os,
		CloudProvider:     "external",
		SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3f5Q2Xq0yQmQ7cX9mJtq3VbqHq3oYkq7o0Jm3sR1z ops@example"},
		ProvisionSource:   "https://example.com/provision/v0.1.0/provision-linux-amd64",
		ProvisionSHA256:   strings.Repeat("ab", 32),
		Containerd:        bootstrapv1.Containerd{RegistryMirrors: map[string][]string{"docker.io": {"https://mirror.example.com"}}},
	}
}

// TestRenderPassesProvisionsValidators: the value the controller stores is
// what cloud-init's schema check and Ignition's parser accept.
func TestRenderPassesProvisionsValidators(t *testing.T) {
	for _, tc := range []struct {
		os, format string
		gzip       bool
	}{
		{"ubuntu-24.04", bootstrapv1.FormatCloudConfig, false},
		{"debian-12", bootstrapv1.FormatCloudConfig, true},
		{"flatcar", bootstrapv1.FormatIgnition, false},
		{"fedora-coreos", bootstrapv1.FormatIgnition, true},
	} {
		t.Run(tc.os, func(t *testing.T) {
			spec := validSpec(tc.os)
			spec.Gzip = tc.gzip
			spec.Files = []bootstrapv1.File{{Path: "/etc/motd", Content: "Managed by provision.\n"}, {Path: "/etc/default/exporter", Mode: 0o600, Content: "A=1\n"}}
			spec.Units = []bootstrapv1.Unit{{Name: "exporter.service", Enabled: true,
				Content: "[Service]\nEnvironmentFile=/etc/default/exporter\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n"}}
			if tc.format == bootstrapv1.FormatIgnition {
				spec.Files = append(spec.Files, bootstrapv1.File{Path: "/opt/bin/exporter", Mode: 0o755, Source: "https://example.com/exporter", SHA256: strings.Repeat("c", 64)})
			}
			d, err := Render(spec, cluster(t))
			if err != nil {
				t.Fatal(err)
			}
			if d.Format != tc.format {
				t.Errorf("format %q, want %q", d.Format, tc.format)
			}
			validators.Userdata(t, d.Format, d.Value)
		})
	}
}

// TestInvalidSpecNamesTheField: generate's field errors come back at their
// path in the ProvisionConfig, or at the object a derived value comes from.
func TestInvalidSpecNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*bootstrapv1.ProvisionConfigSpec, *Cluster)
		paths []string
	}{
		{"unknown os", func(s *bootstrapv1.ProvisionConfigSpec, _ *Cluster) { s.OS = "plan9" }, []string{"spec.os"}},
		{"format the os cannot boot", func(s *bootstrapv1.ProvisionConfigSpec, _ *Cluster) {
			s.OS, s.Format = "flatcar", bootstrapv1.CloudInit
		}, []string{"spec.format"}},
		{"unknown artifact and bad mirror", func(s *bootstrapv1.ProvisionConfigSpec, _ *Cluster) {
			s.Artifacts = map[string]bootstrapv1.Artifact{"kubectl": {URL: "https://example.com/kubectl"}}
			s.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"ftp://mirror"}}
		}, []string{"spec.artifacts.kubectl", "spec.containerd.registryMirrors[docker.io][0]"}},
		{"operator settings", func(s *bootstrapv1.ProvisionConfigSpec, _ *Cluster) {
			s.Taints = []string{"dedicated=gpu:Sometimes"}
			s.KubeletConfig = &runtime.RawExtension{Raw: []byte(`{"noSuchField":1}`)}
			s.ClusterDNS = []string{"not-an-ip"}
		}, []string{"spec.taints[0]", "spec.kubeletConfig.noSuchField", "spec.clusterDNS[0]"}},
		{"extra file and unit", func(s *bootstrapv1.ProvisionConfigSpec, _ *Cluster) {
			s.Files = []bootstrapv1.File{{Path: "/etc/provision/node.yaml", Content: "x"}, {Path: "/etc/a", Source: "https://example.com/a", SHA256: strings.Repeat("a", 64)}}
			s.Units = []bootstrapv1.Unit{{Name: "exporter", Content: "[Service]\nExecStart=/bin/true\n"}}
		}, []string{"spec.files[0].path", "spec.files[1].source", "spec.units[0].name"}},
		{"cluster ranges", func(s *bootstrapv1.ProvisionConfigSpec, c *Cluster) {
			c.PodCIDRs, c.ServiceCIDRs = []string{"10.244.1.0/16"}, []string{"10.96.0.0/12", "10.112.0.0/12"}
		}, []string{"Cluster.spec.clusterNetwork.pods.cidrBlocks[0]", "Cluster.spec.clusterNetwork.services.cidrBlocks[1]"}},
		{"cluster dns outside the services", func(s *bootstrapv1.ProvisionConfigSpec, c *Cluster) {
			c.ServiceCIDRs, s.ClusterDNS = []string{"10.96.0.0/12"}, []string{"10.0.0.10"}
		}, []string{"spec.clusterDNS[0]"}},
		{"proxy URL from the Secret", func(s *bootstrapv1.ProvisionConfigSpec, c *Cluster) {
			ref := &bootstrapv1.ProxyURLSource{SecretKeyRef: bootstrapv1.SecretKeySelector{Name: "proxy", Key: "url"}}
			s.Proxy = &bootstrapv1.Proxy{HTTPProxy: ref, HTTPSProxy: ref, NoProxy: "a b"}
			c.HTTPProxy, c.HTTPSProxy = "socks5://ops:Pr0xyS3cret@proxy:1080", "http://ops:Pr0xyS3cret@proxy:3128/path"
		}, []string{"spec.proxy.httpProxy", "spec.proxy.httpsProxy", "spec.proxy.noProxy"}},
		{"machine without version", func(_ *bootstrapv1.ProvisionConfigSpec, c *Cluster) { c.KubeletVersion = "" }, []string{"Machine.spec.version"}},
		{"machine name not a hostname", func(_ *bootstrapv1.ProvisionConfigSpec, c *Cluster) { c.Hostname = "Not_A_Host" }, []string{"Machine.metadata.name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, c := validSpec("ubuntu-24.04"), cluster(t)
			tc.edit(&spec, &c)
			_, err := Render(spec, c)
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v, want *InvalidError", err)
			}
			var got []string
			for _, e := range inv.Errors {
				got = append(got, e.Path)
			}
			for _, p := range tc.paths {
				if !slices.Contains(got, p) {
					t.Errorf("paths %v, want %s (%v)", got, p, inv)
				}
			}
			if strings.Contains(inv.Error(), c.Token) || strings.Contains(inv.Error(), "BEGIN CERTIFICATE") || strings.Contains(inv.Error(), "Pr0xyS3cret") {
				t.Errorf("the error quotes a secret: %v", inv)
			}
		})
	}
}

// TestClusterNetworkDNS: the cluster DNS is the tenth address of the first
// services CIDR, as kubeadm's; the domain is the Cluster's service domain.
func TestClusterNetworkDNS(t *testing.T) {
	for _, tc := range []struct {
		cidrs        []string
		domain       string
		dns, err     string
		wantedDomain string
	}{
		{cidrs: nil, dns: "10.96.0.10"},
		{cidrs: []string{"10.96.0.0/12"}, domain: "cluster.local", dns: "10.96.0.10", wantedDomain: "cluster.local"},
		{cidrs: []string{"10.128.5.0/24", "fd00::/108"}, domain: "corp.example", dns: "10.128.5.10", wantedDomain: "corp.example"},
		{cidrs: []string{"fd00:10:96::/112"}, dns: "fd00:10:96::a"},
		{cidrs: []string{"10.0.0.8/29"}, err: "no tenth address"},
		{cidrs: []string{"10.96.0.0"}, err: "must be a CIDR"},
	} {
		dns, domain, err := ClusterNetworkDNS(tc.cidrs, tc.domain)
		if tc.err != "" {
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.err) || inv.Errors[0].Path != "Cluster.spec.clusterNetwork.services.cidrBlocks[0]" {
				t.Errorf("%v: error %v, want %q at the Cluster's field", tc.cidrs, err, tc.err)
			}
			continue
		}
		if err != nil || len(dns) != 1 || dns[0] != tc.dns || domain != tc.wantedDomain {
			t.Errorf("%v %q: %v %q %v, want %s %q", tc.cidrs, tc.domain, dns, domain, err, tc.dns, tc.wantedDomain)
		}
	}
}

const (
	regHost     = "registry.example.com:5000"
	regPassword = "capiPa55-MARKER"
	regToken    = "capiT0ken-MARKER"
)

// TestRegistriesFromReferences: the CA and credentials the controller read
// from the referenced objects land in the userdata's CA file and
// registry-credentials.json, in both formats; node.yaml holds only the CA's
// path and the credentials file's name.
func TestRegistriesFromReferences(t *testing.T) {
	ca := testca.New(t).CertPEM
	for _, tc := range []struct {
		os   string
		auth v1alpha1.RegistryAuth
		ref  bootstrapv1.RegistryCredentialsSecretRef
	}{
		{"ubuntu-24.04", v1alpha1.RegistryAuth{Username: "puller", Password: regPassword}, bootstrapv1.RegistryCredentialsSecretRef{Name: "reg"}},
		{"flatcar", v1alpha1.RegistryAuth{IdentityToken: regToken}, bootstrapv1.RegistryCredentialsSecretRef{Name: "reg", IdentityTokenKey: "token"}},
	} {
		t.Run(tc.os, func(t *testing.T) {
			spec := validSpec(tc.os)
			spec.Containerd.Registries = map[string]bootstrapv1.Registry{
				regHost:        {CACertFrom: &bootstrapv1.CACertSource{ConfigMapKeyRef: &bootstrapv1.KeyRef{Name: "reg-ca", Key: "ca.crt"}}, CredentialsSecretRef: &tc.ref},
				"dev.internal": {SkipVerify: true},
			}
			c := cluster(t)
			c.Registries = map[string]RegistryInputs{regHost: {CACert: string(ca), Auth: tc.auth}}
			d, err := Render(spec, c)
			if err != nil {
				t.Fatal(err)
			}
			validators.Userdata(t, d.Format, d.Value)
			files := validators.Files(t, d.Format, d.Value)
			creds, err := v1alpha1.ParseRegistryCredentials(files[v1alpha1.RegistryCredentialsPath])
			if err != nil {
				t.Fatalf("%s: %v", v1alpha1.RegistryCredentialsPath, err)
			}
			if want := (v1alpha1.RegistryCredentials{regHost: tc.auth}); !reflect.DeepEqual(creds, want) {
				t.Errorf("credentials file holds other credentials than the Secret's (hosts %v)", slices.Sorted(maps.Keys(creds)))
			}
			if got := files[v1alpha1.RegistryCAPath(regHost)]; string(got) != string(ca) {
				t.Errorf("%s is not the ConfigMap's CA", v1alpha1.RegistryCAPath(regHost))
			}
			node := string(files[v1alpha1.NodeConfigPath])
			for _, want := range []string{"credentialsFile: " + v1alpha1.RegistryCredentialsPath, "caPath: " + v1alpha1.RegistryCAPath(regHost), "skipVerify: true"} {
				if !strings.Contains(node, want) {
					t.Errorf("node.yaml lacks %q:\n%s", want, node)
				}
			}
			if strings.Contains(node, regPassword) || strings.Contains(node, regToken) {
				t.Error("node.yaml holds a credential")
			}
		})
	}
}

// TestRegistryErrorsNameTheReference: a bad CA or credential read from a
// referenced object is reported at the reference, naming the object and key,
// never quoting the value.
func TestRegistryErrorsNameTheReference(t *testing.T) {
	spec := validSpec("ubuntu-24.04")
	spec.Containerd.Registries = map[string]bootstrapv1.Registry{
		regHost:   {CACertFrom: &bootstrapv1.CACertSource{SecretKeyRef: &bootstrapv1.KeyRef{Name: "reg-tls", Key: "ca.crt"}}, CredentialsSecretRef: &bootstrapv1.RegistryCredentialsSecretRef{Name: "reg", PasswordKey: "pw"}},
		"ghcr.io": {CredentialsSecretRef: &bootstrapv1.RegistryCredentialsSecretRef{Name: "ghcr", IdentityTokenKey: "token"}},
	}
	c := cluster(t)
	c.Registries = map[string]RegistryInputs{
		regHost:   {CACert: "not a PEM " + regPassword, Auth: v1alpha1.RegistryAuth{Username: "puller", Password: regPassword + "\n"}},
		"ghcr.io": {Auth: v1alpha1.RegistryAuth{IdentityToken: regToken + "\x00"}},
	}
	_, err := Render(spec, c)
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v, want *InvalidError", err)
	}
	var got []string
	for _, e := range inv.Errors {
		got = append(got, e.Path)
	}
	for _, want := range []string{
		"spec.containerd.registries[" + regHost + "].caCertFrom (Secret reg-tls key ca.crt)",
		"spec.containerd.registries[" + regHost + "].credentialsSecretRef (Secret reg key pw)",
		"spec.containerd.registries[ghcr.io].credentialsSecretRef (Secret ghcr key token)",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("paths %q, want %q", got, want)
		}
	}
	if strings.Contains(err.Error(), regPassword) || strings.Contains(err.Error(), regToken) {
		t.Errorf("the error quotes a secret: %v", err)
	}
}
