package testenv

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// Server is an HTTP server of the test listening inside a network namespace.
type Server struct {
	// URL is http://ServerAddr:port (Serve), reachable from the booted root, or
	// http://addr:port (ServeOn).
	URL string
	srv *http.Server
}

// Serve starts an HTTP server for h on ServerAddr inside the namespace; it is
// closed at cleanup (or earlier by Close, e.g. to prove a run needs no download).
func (n *NetNS) Serve(t testing.TB, h http.Handler) *Server {
	t.Helper()
	return n.ServeOn(t, ServerAddr, h)
}

// ServeOn is Serve on addr, an address of the namespace (any port).
func (n *NetNS) ServeOn(t testing.TB, addr string, h http.Handler) *Server {
	t.Helper()
	l, err := n.Listen(addr + ":0")
	if err != nil {
		t.Fatalf("listen in %s: %v", n.Name, err)
	}
	s := &Server{URL: "http://" + l.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http server %s: %v", s.URL, err)
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// ServeDir serves the files under dir.
func (n *NetNS) ServeDir(t testing.TB, dir string) *Server {
	t.Helper()
	return n.Serve(t, http.FileServer(http.Dir(dir)))
}

// Close stops the server; calling it twice is harmless.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
}

// HTTPClient returns a client whose connections are made from inside the namespace.
func (n *NetNS) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: n.DialContext}, Timeout: 2 * time.Minute}
}
