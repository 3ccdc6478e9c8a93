// Package logging is provision's one logging helper on log/slog: every step logs
// started, then finished or failed, with its duration.
package logging

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// New returns a text logger to w at level.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Discard returns a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Step runs fn as the step called name: it logs "started", then "finished" with
// fn's result and detail, or "failed" with its error, each with the duration.
func Step(ctx context.Context, log *slog.Logger, name string, fn func(ctx context.Context) (result, detail string, err error)) (string, string, time.Duration, error) {
	log.InfoContext(ctx, "started", "task", name)
	start := time.Now()
	result, detail, err := fn(ctx)
	d := time.Since(start)
	if err != nil {
		log.ErrorContext(ctx, "failed", "task", name, "error", err, "duration", d.Round(time.Microsecond))
		return result, detail, d, err
	}
	attrs := []any{"task", name, "result", result}
	if detail != "" {
		attrs = append(attrs, "detail", detail)
	}
	attrs = append(attrs, "duration", d.Round(time.Microsecond))
	log.InfoContext(ctx, "finished", attrs...)
	return result, detail, d, nil
}
