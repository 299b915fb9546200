// Command linkgraph is the one binary of linkgraph: the all-in-one crawl and
// serve commands, the cluster roles, and the query commands. main only maps
// a command's outcome to an exit code: 0 ok, 1 runtime failure, 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: it parses its own flags and runs.
type command interface {
	name() string
	synopsis() string
	run(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{&crawlCmd{}, &serveCmd{}, &backlinksCmd{}, &domainsCmd{}, &anchorsCmd{}, &statsCmd{}, &outlinksCmd{}, &exportCmd{}, &generateCmd{}, &compactCmd{}, &velocityCmd{}, &intersectCmd{}, &recrawlCmd{}, &rankCmd{}, &workerCmd{}, &shardCmd{}, &gatewayCmd{}, &seedCmd{}}
}

// usageError marks an error as the caller's mistake (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "help" {
		args = []string{args[1], "-h"} // "help backlinks" is "backlinks -h"
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name() != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "linkgraph %s: %v\n", c.name(), err)
			fmt.Fprintf(stderr, "Run 'linkgraph %s -h' for usage.\n", c.name())
			return 2
		default:
			fmt.Fprintf(stderr, "linkgraph %s: %v\n", c.name(), err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "linkgraph: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: linkgraph <command> [flags] [args]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name(), c.synopsis())
	}
	fmt.Fprintln(w, "\nRun 'linkgraph <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: linkgraph %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors. Flags may
// come after positional arguments too.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package prints a bad flag's error and the whole usage
	// before returning the error, which run prints again: silenced, a
	// mistake gets one line and the hint to -h; -h itself prints usage.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				usage()
				return nil, err
			}
			// The flag package names flags with one dash; every other
			// message, and the help, with two.
			msg := strings.NewReplacer("for flag -", "for flag --", "not defined: -", "not defined: --", "flag needs an argument: -", "flag needs an argument: --").Replace(err.Error())
			return nil, usageError{errors.New(msg)}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
