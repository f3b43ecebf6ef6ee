package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// compareMain implements `bench compare [--names A,B] A.json B.json`: every
// metric of A as a ratio of B's (below 1: A is faster or smaller).
func compareMain(args []string) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	names := fs.String("names", "", "labels of the two reports (default: their runtime names)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: bench compare [--names A,B] A.json B.json")
	}
	a, err := readReport(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := readReport(fs.Arg(1))
	if err != nil {
		return err
	}
	an, bn := a.Runtime, b.Runtime
	if l := splitList(*names); len(l) == 2 {
		an, bn = l[0], l[1]
	}
	printComparison(os.Stdout, a, b, an, bn)
	return nil
}

func printComparison(w io.Writer, a, b *Report, an, bn string) {
	fmt.Fprintf(w, "\n== ratio %s/%s (below 1: %s is faster/smaller)\n", an, bn, an)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency (ms)\t%s p50\t%s p50\tratio\t%s p99\t%s p99\tratio\t\n", an, bn, an, bn)
	bl := map[string]Latency{}
	for _, l := range b.Latencies {
		bl[l.Name] = l
	}
	seen := map[string]bool{}
	for _, l := range a.Latencies {
		seen[l.Name] = true
		o, ok := bl[l.Name]
		if !ok {
			fmt.Fprintf(tw, "%s\t%.2f\t-\t-\t%.2f\t-\t-\t\n", l.Name, l.P50Ms, l.P99Ms)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%.2f\t%.2f\t%s\t\n",
			l.Name, l.P50Ms, o.P50Ms, ratio(l.P50Ms, o.P50Ms), l.P99Ms, o.P99Ms, ratio(l.P99Ms, o.P99Ms))
	}
	for _, o := range b.Latencies {
		if !seen[o.Name] {
			fmt.Fprintf(tw, "%s\t-\t%.2f\t-\t-\t%.2f\t-\t\n", o.Name, o.P50Ms, o.P99Ms)
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "figure\t%s\t%s\tratio\tunit\t\n", an, bn)
	bv := map[string]Value{}
	for _, v := range b.Values {
		bv[v.Name] = v
	}
	seen = map[string]bool{}
	for _, v := range a.Values {
		seen[v.Name] = true
		if o, ok := bv[v.Name]; ok {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", v.Name, formatValue(v.Value), formatValue(o.Value), ratio(v.Value, o.Value), v.Unit)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\t\n", v.Name, formatValue(v.Value), v.Unit)
		}
	}
	for _, o := range b.Values {
		if !seen[o.Name] {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t%s\t\n", o.Name, formatValue(o.Value), o.Unit)
		}
	}
	tw.Flush()
	for _, r := range []*Report{a, b} {
		for _, f := range r.Failures {
			fmt.Fprintf(w, "FAILED on %s, %s: %s\n", r.Runtime, f.Scenario, f.Error)
		}
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "1.00"
		}
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
