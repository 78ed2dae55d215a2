// Package envflag binds command-line flags to environment variables, the
// 12-factor way ECS passes configuration: a flag given on the command line
// wins, else its variable, else the default. Errors name the variable, so a
// task that fails to start says which setting is wrong.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Set collects flags bound to variables and checks them after parsing.
type Set struct {
	fs     *flag.FlagSet
	lookup func(string) (string, bool)
	checks []func(set map[string]bool) error
}

// New returns a Set over fs reading variables with lookup (os.LookupEnv if nil).
func New(fs *flag.FlagSet, lookup func(string) (string, bool)) *Set {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Set{fs: fs, lookup: lookup}
}

func (s *Set) usage(env, usage string) string {
	return usage + " [$" + env + "]"
}

// String binds a string flag to env. Required strings must end up non-empty.
func (s *Set) String(p *string, name, env, def, usage string, required bool) {
	s.fs.StringVar(p, name, def, s.usage(env, usage))
	s.checks = append(s.checks, func(set map[string]bool) error {
		if !set[name] {
			if v, ok := s.lookup(env); ok {
				*p = strings.TrimSpace(v)
			}
		}
		if required && *p == "" {
			return fmt.Errorf("%s (-%s) is required", env, name)
		}
		return nil
	})
}

// Int binds an int flag to env, within [lo, hi].
func (s *Set) Int(p *int, name, env string, def int, usage string, lo, hi int) {
	s.fs.IntVar(p, name, def, s.usage(env, usage))
	s.checks = append(s.checks, func(set map[string]bool) error {
		if !set[name] {
			if v, ok := s.lookup(env); ok && strings.TrimSpace(v) != "" {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("%s: %q is not a whole number", env, v)
				}
				*p = n
			}
		}
		if *p < lo || *p > hi {
			return fmt.Errorf("%s (-%s): %d is out of range [%d, %d]", env, name, *p, lo, hi)
		}
		return nil
	})
}

// Duration binds a duration flag to env, within [lo, hi].
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string, lo, hi time.Duration) {
	s.fs.DurationVar(p, name, def, s.usage(env, usage))
	s.checks = append(s.checks, func(set map[string]bool) error {
		if !set[name] {
			if v, ok := s.lookup(env); ok && strings.TrimSpace(v) != "" {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("%s: %q is not a duration (like 30s or 72h)", env, v)
				}
				*p = d
			}
		}
		if *p < lo || *p > hi {
			return fmt.Errorf("%s (-%s): %s is out of range [%s, %s]", env, name, *p, lo, hi)
		}
		return nil
	})
}

// Check adds a check that runs after the bound values are resolved.
func (s *Set) Check(f func() error) {
	s.checks = append(s.checks, func(map[string]bool) error { return f() })
}

// Parse parses args, applies the variables, and runs every check, returning
// all problems at once.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(s.fs.Args(), " "))
	}
	set := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	for _, c := range s.checks {
		if err := c(set); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
