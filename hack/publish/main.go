// Command publish uploads a build made by hack/build.sh to a Google Cloud Storage bucket
// with Google's official Go client, and prints the `provision generate` flags that point
// at it:
//
//	go run . -dir ../../_output -dest gs://BUCKET/provision/v0.1.0
//
// Credentials come from the usual Application Default Credentials. STORAGE_EMULATOR_HOST
// (honoured by the client) points it at an emulator instead. Each binary's sha256 is
// checked against its .sha256 file before upload, and the upload carries a CRC32C that
// the server verifies, so a corrupted transfer is refused rather than published.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
)

func main() {
	dir := flag.String("dir", "_output", "directory written by hack/build.sh")
	dest := flag.String("dest", "", "destination, gs://BUCKET/PREFIX")
	publicBase := flag.String("public-base", "https://storage.googleapis.com", "base URL nodes download objects from")
	flag.Parse()
	ctx := context.Background()
	var opts []option.ClientOption
	if os.Getenv("STORAGE_EMULATOR_HOST") != "" {
		opts = append(opts, option.WithoutAuthentication())
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "publish: storage client:", err)
		os.Exit(1)
	}
	defer client.Close()
	if err := publish(ctx, client, *dir, *dest, *publicBase, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
}

// parseDest splits gs://bucket/prefix.
func parseDest(dest string) (bucket, prefix string, err error) {
	u, err := url.Parse(dest)
	if err != nil || u.Scheme != "gs" || u.Host == "" {
		return "", "", fmt.Errorf("-dest %q: must be gs://BUCKET[/PREFIX]", dest)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

type artifact struct {
	name, path, sha256 string
}

// artifacts lists the binaries in dir that have a .sha256 beside them and match it.
func artifacts(dir string) ([]artifact, error) {
	sums, err := filepath.Glob(filepath.Join(dir, "provision-*.sha256"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("no provision-*.sha256 in %s: run hack/build.sh first", dir)
	}
	sort.Strings(sums)
	var out []artifact
	for _, s := range sums {
		data, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("read checksum: %w", err)
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 || len(fields[0]) != 64 {
			return nil, fmt.Errorf("%s: expected \"SHA256  NAME\"", s)
		}
		a := artifact{name: strings.TrimSuffix(filepath.Base(s), ".sha256"), sha256: fields[0]}
		a.path = filepath.Join(dir, a.name)
		got, err := fileSHA256(a.path)
		if err != nil {
			return nil, err
		}
		if got != a.sha256 {
			return nil, fmt.Errorf("%s: sha256 %s does not match %s (%s): rebuild", a.path, got, s, a.sha256)
		}
		out = append(out, a)
	}
	return out, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("open artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func publish(ctx context.Context, client *storage.Client, dir, dest, publicBase string, out io.Writer) error {
	bucket, prefix, err := parseDest(dest)
	if err != nil {
		return err
	}
	arts, err := artifacts(dir)
	if err != nil {
		return err
	}
	for _, a := range arts {
		for _, f := range []struct{ local, object string }{
			{a.path, path.Join(prefix, a.name)},
			{a.path + ".sha256", path.Join(prefix, a.name+".sha256")},
		} {
			if err := upload(ctx, client.Bucket(bucket).Object(f.object), f.local); err != nil {
				return fmt.Errorf("upload gs://%s/%s: %w", bucket, f.object, err)
			}
		}
		fmt.Fprintf(out, "%s: --provision-source %s/%s/%s --provision-sha256 %s\n",
			a.name, strings.TrimSuffix(publicBase, "/"), bucket, path.Join(prefix, a.name), a.sha256)
	}
	return nil
}

func upload(ctx context.Context, obj *storage.ObjectHandle, local string) error {
	data, err := os.ReadFile(local)
	if err != nil {
		return fmt.Errorf("read %s: %w", local, err)
	}
	w := obj.NewWriter(ctx)
	w.ContentType = "application/octet-stream"
	w.CRC32C = crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	w.SendCRC32C = true
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if w.Attrs() == nil {
		return errors.New("no object attributes returned")
	}
	return nil
}
