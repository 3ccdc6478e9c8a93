package download

import (
	"strings"
	"testing"
)

// FuzzParseChecksum feeds arbitrary .sha256 files. Properties: no panic; an
// accepted file yields 64 lower-case hex digits that parse back to themselves
// and that were the file's first field; a rejected one names where it came from.
//
//	go test ./internal/download -run '^$' -fuzz FuzzParseChecksum -fuzztime 60s
func FuzzParseChecksum(f *testing.F) {
	good := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{good, good + "\n", strings.ToUpper(good) + "  kubelet\n", good + " *crictl.tgz\nsecond line\n", "\t " + good,
		"", "\n\n", "<html>404</html>", good[:63], good + "0", strings.Repeat("g", 64), "sha256:" + good, "\xff\xfe" + good} {
		f.Add([]byte(s))
	}
	const from = "https://mirror.internal/kubelet.sha256"
	f.Fuzz(func(t *testing.T, body []byte) {
		sum, err := ParseChecksum(body, from)
		if err != nil {
			if !strings.HasPrefix(err.Error(), from+": ") {
				t.Fatalf("error does not name the source: %v", err)
			}
			if sum != "" {
				t.Fatalf("error with a sum %q", sum)
			}
			return
		}
		if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			t.Fatalf("accepted %q", sum)
		}
		if first := strings.Fields(string(body)); len(first) == 0 || !strings.EqualFold(first[0], sum) {
			t.Fatalf("sum %s is not the first field of %q", sum, body)
		}
		if again, err := ParseChecksum([]byte(sum), from); err != nil || again != sum {
			t.Fatalf("not stable: %q %v", again, err)
		}
	})
}
