// Command serve publishes a build directory over HTTP on loopback for development, and
// prints the exact `provision generate` flags that point at each provision binary in it.
//
//	go run ./hack/serve -dir _output -addr 127.0.0.1:8080
//
// It serves files read-only (no directory listings), logs each request, and stops on
// SIGINT/SIGTERM. -pid-file records its PID so scripts stop it by PID.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "_output", "directory to serve")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (keep it on loopback)")
	pidFile := flag.String("pid-file", "", "write the server's PID to this file")
	flag.Parse()
	if err := run(*dir, *addr, *pidFile, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(dir, addr, pidFile string, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("write pid file: %w", err)
		}
	}
	base := "http://" + ln.Addr().String()
	if err := printFlags(out, dir, base); err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(dir), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// handler serves regular files from dir and nothing else (no listings, no dotfiles).
func handler(dir string) http.Handler {
	fs := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Clean("/" + r.URL.Path)
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || strings.Contains(name, "/.") {
			http.NotFound(w, r)
			return
		}
		slog.Info("serve", "method", r.Method, "path", name, "remote", r.RemoteAddr)
		fs.ServeHTTP(w, r)
	})
}

// printFlags prints, for every provision-* binary with a .sha256 beside it, the flags
// to pass to `provision generate`.
func printFlags(out io.Writer, dir, base string) error {
	sums, err := filepath.Glob(filepath.Join(dir, "provision-*.sha256"))
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(sums)
	fmt.Fprintf(out, "serving %s at %s\n", dir, base)
	for _, s := range sums {
		data, err := os.ReadFile(s)
		if err != nil {
			return fmt.Errorf("read %s: %w", s, err)
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 || len(fields[0]) != 64 {
			return fmt.Errorf("%s: expected \"SHA256  NAME\"", s)
		}
		name := strings.TrimSuffix(filepath.Base(s), ".sha256")
		fmt.Fprintf(out, "%s: --provision-source %s/%s --provision-sha256 %s --allow-http-source\n", name, base, name, fields[0])
	}
	return nil
}
