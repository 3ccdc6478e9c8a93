package v1alpha1

import (
	"reflect"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/validation"
)

const proxySecret = "s3cr3tPa55"

func TestProxyValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     Proxy
		field string // "" = valid
		msg   string
	}{
		{name: "zero", p: Proxy{}},
		{name: "http", p: Proxy{HTTPProxy: "http://proxy.example:3128", HTTPSProxy: "http://proxy.example:3128", NoProxy: "10.0.0.0/8,.internal,example.com,*,[::1]:80,fd00::/8,host:8080"}},
		{name: "credentials", p: Proxy{HTTPSProxy: "https://user:" + proxySecret + "@proxy.example/"}},
		{name: "percent-encoded", p: Proxy{HTTPProxy: "http://user:p%40ss@proxy.example:8080"}},
		{name: "scheme", p: Proxy{HTTPProxy: "socks5://u:" + proxySecret + "@proxy:1080"}, field: "proxy.httpProxy", msg: "scheme http or https"},
		{name: "no host", p: Proxy{HTTPSProxy: "http://:3128"}, field: "proxy.httpsProxy", msg: "with a host"},
		{name: "path", p: Proxy{HTTPProxy: "http://proxy:3128/x?y"}, field: "proxy.httpProxy", msg: "without a path"},
		{name: "space", p: Proxy{HTTPProxy: "http://u:" + proxySecret + " x@proxy"}, field: "proxy.httpProxy", msg: "without spaces"},
		{name: "dollar", p: Proxy{HTTPProxy: "http://u:" + proxySecret + "$x@proxy"}, field: "proxy.httpProxy", msg: "'$'"},
		{name: "port", p: Proxy{HTTPProxy: "http://proxy:0"}, field: "proxy.httpProxy", msg: "port from 1 to 65535"},
		{name: "noProxy alone", p: Proxy{NoProxy: "a.example"}, field: "proxy.noProxy", msg: "without httpProxy or httpsProxy"},
		{name: "noProxy empty entry", p: Proxy{HTTPProxy: "http://p:1", NoProxy: "a,,b"}, field: "proxy.noProxy", msg: "entry 2 is empty"},
		{name: "noProxy bad entry", p: Proxy{HTTPProxy: "http://p:1", NoProxy: "a,b c"}, field: "proxy.noProxy", msg: "entry 2"},
		{name: "noProxy bad CIDR", p: Proxy{HTTPProxy: "http://p:1", NoProxy: "10.0.0.0/99"}, field: "proxy.noProxy", msg: "not a valid CIDR"},
		{name: "noProxy quote", p: Proxy{HTTPProxy: "http://p:1", NoProxy: "a\"b"}, field: "proxy.noProxy", msg: "entry 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.p.Validate(validation.Path("proxy"))
			if tc.field == "" {
				if len(es) != 0 {
					t.Fatalf("valid proxy refused: %v", es)
				}
				return
			}
			if len(es) != 1 || es[0].Field != tc.field || !strings.Contains(es[0].Message, tc.msg) {
				t.Fatalf("errors %v, want one at %s containing %q", es, tc.field, tc.msg)
			}
			if strings.Contains(es.Error(), proxySecret) {
				t.Errorf("the error quotes the proxy's credentials: %v", es)
			}
		})
	}
}

// TestGenerateConfigProxyPath: GenerateConfig.Validate reports proxy errors under proxy.*.
func TestGenerateConfigProxyPath(t *testing.T) {
	es := GenerateConfig{Proxy: Proxy{HTTPProxy: "ftp://u:" + proxySecret + "@x"}}.Validate("")
	found := false
	for _, e := range es {
		found = found || e.Field == "proxy.httpProxy"
	}
	if !found || strings.Contains(es.Error(), proxySecret) {
		t.Fatalf("errors %v: want proxy.httpProxy, without the credentials", es)
	}
}

func TestNodeProxyValidate(t *testing.T) {
	for _, tc := range []struct {
		file string
		ok   bool
	}{
		{ProxyEnvPath, true}, {"", true}, {"relative/proxy.env", false}, {"/etc/../proxy.env", false}, {"/etc/pro xy.env", false}, {"/etc/%n.env", false},
	} {
		es := NodeProxy{EnvironmentFile: tc.file}.Validate(validation.Path("proxy"))
		if (len(es) == 0) != tc.ok || (!tc.ok && es[0].Field != "proxy.environmentFile") {
			t.Errorf("%q: %v, want ok=%v", tc.file, es, tc.ok)
		}
	}
}

func TestProxyEnvFileRoundTrip(t *testing.T) {
	p := Proxy{HTTPProxy: "http://u:" + proxySecret + "@proxy:3128", HTTPSProxy: "http://proxy:3128", NoProxy: ".internal"}.
		WithNoProxy("10.0.0.10", "localhost", "10.0.0.10")
	if p.NoProxy != ".internal,localhost,127.0.0.1,10.0.0.10" {
		t.Errorf("noProxy %q", p.NoProxy)
	}
	data := p.EnvFile()
	want := "http_proxy=" + p.HTTPProxy + "\nhttps_proxy=http://proxy:3128\nno_proxy=" + p.NoProxy + "\n"
	if string(data) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", data, want)
	}
	kvs, err := ParseProxyEnv(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 3 || !reflect.DeepEqual(kvs[0], [2]string{"http_proxy", p.HTTPProxy}) || kvs[2] != [2]string{"no_proxy", p.NoProxy} {
		t.Errorf("parsed %v", kvs)
	}
	if (Proxy{}).WithNoProxy("x") != (Proxy{}) {
		t.Error("a zero proxy gained a noProxy")
	}
}

func TestParseProxyEnvRefuses(t *testing.T) {
	for _, in := range []string{"PATH=/tmp\n", "http_proxy\n", "LD_PRELOAD=/x.so\n"} {
		_, err := ParseProxyEnv([]byte("# c\n\n" + in))
		if err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%q: %v", in, err)
		}
	}
	kvs, err := ParseProxyEnv([]byte("export https_proxy=\"http://u:" + proxySecret + "@p:1\"\n"))
	if err != nil || kvs[0][1] != "http://u:"+proxySecret+"@p:1" {
		t.Errorf("%v %v", kvs, err)
	}
	_, err = ParseProxyEnv([]byte("http_proxy=http://u:" + proxySecret + "@p\nbogus " + proxySecret + "\n"))
	if err == nil || strings.Contains(err.Error(), proxySecret) {
		t.Errorf("error %v must not quote a value", err)
	}
}
