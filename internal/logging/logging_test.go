package logging

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestStep(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, 0)
	Step(context.Background(), log, "kernel/sysctl-config", func(context.Context) (string, string, error) { return "changed", "create /etc/x", nil })
	Step(context.Background(), log, "packages/install", func(context.Context) (string, string, error) { return "", "", errors.New("apt-get exited 100") })
	out := buf.String()
	for _, want := range []string{
		"msg=started task=kernel/sysctl-config",
		"msg=finished task=kernel/sysctl-config result=changed detail=\"create /etc/x\" duration=",
		"level=ERROR msg=failed task=packages/install error=\"apt-get exited 100\" duration=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
