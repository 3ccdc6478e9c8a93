package runner

import (
	"context"
	"strings"
	"testing"
)

func TestExecExitError(t *testing.T) {
	res, err := Exec{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo out; echo bad >&2; exit 3"}})
	if ExitCode(err) != 3 || string(res.Stdout) != "out\n" {
		t.Fatalf("res=%+v err=%v", res, err)
	}
	if !strings.Contains(err.Error(), `"sh -c echo out; echo bad >&2; exit 3" exited with status 3: bad`) {
		t.Errorf("error must name argv and stderr: %v", err)
	}
	if _, err := (Exec{}).Run(context.Background(), Cmd{Argv: []string{"/nonexistent/tool"}}); err == nil || ExitCode(err) != -1 {
		t.Errorf("missing tool: %v", err)
	}
	res, err = Exec{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo $X; cat"}, Env: []string{"X=1"}, Stdin: []byte("in")})
	if err != nil || string(res.Stdout) != "1\nin" {
		t.Errorf("env/stdin: %q %v", res.Stdout, err)
	}
}

func TestFake(t *testing.T) {
	f := (&Fake{}).On([]string{"dpkg-query"}, "x\tii \n", 0).On([]string{"apt-get"}, "", 100)
	if res, err := f.Run(context.Background(), Cmd{Argv: []string{"chroot", "/r", "dpkg-query", "-W"}}); err != nil || string(res.Stdout) != "x\tii \n" {
		t.Errorf("chroot prefix not matched: %v", err)
	}
	if _, err := f.Run(context.Background(), Cmd{Argv: []string{"apt-get", "update"}}); ExitCode(err) != 100 {
		t.Errorf("exit code: %v", err)
	}
	if got := f.Calls(); len(got) != 2 || got[1] != "apt-get update" {
		t.Errorf("calls = %v", got)
	}
}
