// Command teep is the single binary of the project: key tools, the TEEP
// message codec, SUIT tools, EAT tools, the TAM server, the device side
// (Agent + Broker) and a self-contained demo. Each subcommand lives in its own
// file and registers itself; this file only dispatches.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
)

// env is what a command may touch, so tests can run commands in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command is one leaf of the command tree, e.g. "key generate".
type command struct {
	path    string // words after "teep", space separated
	summary string // one line for listings
	run     func(e *env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.path]; dup {
		panic("teep: duplicate command " + c.path)
	}
	commands[c.path] = c
}

// usageError makes the process exit with status 2 after printing its text.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(e, os.Args[1:]))
}

// run dispatches args to the longest matching command path and returns the
// process exit status: 0 success, 1 failure, 2 usage error.
func run(e *env, args []string) int {
	var c *command
	n := 0
	for i := len(args); i > 0; i-- {
		if cmd, ok := commands[strings.Join(args[:i], " ")]; ok {
			c, n = cmd, i
			break
		}
	}
	if c == nil {
		prefix := leadingWords(args)
		help := len(prefix) < len(args) && isHelpFlag(args[len(prefix)])
		if len(prefix) > 0 && prefix[len(prefix)-1] == "help" {
			prefix, help = prefix[:len(prefix)-1], true
		}
		if !hasChildren(prefix) {
			fmt.Fprintf(e.stderr, "teep: unknown command %q\n\n", strings.Join(prefix, " "))
			listCommands(e.stderr, nil)
			return 2
		}
		if help {
			listCommands(e.stdout, prefix)
			return 0
		}
		listCommands(e.stderr, prefix)
		return 2
	}
	err := c.run(e, args[n:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "teep %s: %s\n", c.path, ue.msg)
		return 2
	}
	fmt.Fprintf(e.stderr, "teep %s: %v\n", c.path, err)
	return 1
}

func leadingWords(args []string) []string {
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			return args[:i]
		}
	}
	return args
}

func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

func hasChildren(prefix []string) bool {
	p := strings.Join(prefix, " ")
	for path := range commands {
		if p == "" || strings.HasPrefix(path, p+" ") {
			return true
		}
	}
	return false
}

func listCommands(w io.Writer, prefix []string) {
	p := strings.Join(prefix, " ")
	var paths []string
	for path := range commands {
		if p == "" || strings.HasPrefix(path, p+" ") {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	fmt.Fprintln(w, "Usage: teep <command> [flags] [args]   (teep <command> --help for details)")
	fmt.Fprintln(w, "\nCommands:")
	for _, path := range paths {
		fmt.Fprintf(w, "  %-22s %s\n", path, commands[path].summary)
	}
}

// newFlags returns a FlagSet for a command whose usage text is synopsis
// followed by the flag defaults. --help prints it to stdout; a flag error
// prints it to stderr.
func newFlags(e *env, path, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("teep "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := e.stderr
		if _, ok := usageToStdout.Load(fs); ok {
			w = e.stdout
		}
		fmt.Fprintf(w, "Usage: teep %s %s\n", path, synopsis)
		if about != "" {
			fmt.Fprintf(w, "\n%s\n", about)
		}
		has := false
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(w, "\nFlags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return fs
}

// usageToStdout marks flag sets whose usage was asked for with --help.
var usageToStdout sync.Map // *flag.FlagSet -> struct{}

// parse parses flags that may appear before, between or after positional
// arguments, and returns the positional ones. --help prints usage and yields
// flag.ErrHelp; a bad flag yields a usageError.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelpFlag(a) {
			usageToStdout.Store(fs, struct{}{})
		}
	}
	defer usageToStdout.Delete(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp // flag has printed the usage
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// readInput reads a named file, or stdin for "-" or no name, up to limit bytes.
func readInput(e *env, args []string, limit int64) ([]byte, error) {
	var r io.Reader = e.stdin
	name := "stdin"
	if len(args) > 1 {
		return nil, usagef("want at most one input file, got %d", len(args))
	}
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, args[0]
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: input exceeds %d bytes", name, limit)
	}
	return data, nil
}

// newLogger builds the slog logger for --log-level and --log-format, on stderr.
func newLogger(e *env, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level: want debug, info, warn or error")
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, o)), nil
	}
	return nil, usagef("--log-format: want text or json")
}
