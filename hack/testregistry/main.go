// Command testregistry serves the offline test images (see package
// test/e2e/registry) until SIGINT or SIGTERM, or with --list prints them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	testregistry "github.com/nodeagent/nodeagent/test/e2e/registry"
)

func main() {
	var (
		opts     testregistry.Options
		addrFile string
		list     bool
	)
	flag.StringVar(&opts.Listen, "listen", "127.0.0.1:0", "TCP address to serve on")
	flag.StringVar(&opts.CacheDir, "cache", testregistry.DefaultCacheDir, "directory keeping built images between runs")
	flag.StringVar(&addrFile, "addr-file", "", "write host:port here once serving")
	flag.BoolVar(&list, "list", false, "print reference, served path, digest and image ID of every image, then exit")
	flag.Parse()
	if err := run(opts, addrFile, list); err != nil {
		fmt.Fprintln(os.Stderr, "testregistry:", err)
		os.Exit(1)
	}
}

func run(opts testregistry.Options, addrFile string, list bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reg, err := testregistry.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer reg.Close()
	if list {
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "REFERENCE\tPATH\tDIGEST\tIMAGE ID")
		for _, img := range reg.Images() {
			fmt.Fprintf(w, "%s\t%s:%s\t%s\t%s\n", img.Reference, img.Repository, img.Tag, img.Digest, img.ID)
		}
		return w.Flush()
	}
	if addrFile != "" {
		if err := writeAtomic(addrFile, reg.Addr()+"\n"); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "testregistry: serving", reg.URL())
	<-ctx.Done()
	return nil
}

// writeAtomic writes via a temporary file and a rename, so that a reader
// polling for path never sees it half written.
func writeAtomic(path, content string) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
