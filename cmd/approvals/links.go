package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/internal/envflag"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// links validates a request as the worker does and prints the links the
// worker would mint for it, for channels this service does not post to.
// The configuration comes from the worker's own variables, so the verdict
// and the links are the worker's.
func links(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("links", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: approvals links -request FILE")
		fmt.Fprintln(stderr, "\nValidates an approval request as the worker does and prints, per recipient and channel,")
		fmt.Fprintln(stderr, `the links the worker would mint, as a JSON array of {"recipient", "action", "type", "url"}.`)
		fmt.Fprintln(stderr, "They are working links: whoever holds one can decide with it.")
		fs.PrintDefaults()
	}
	s := envflag.New(fs, nil)
	var file, keys, baseURL, channels, dir string
	var defExpiry time.Duration
	fs.StringVar(&file, "request", "", "JSON file holding the request, the SQS message body ('-' for stdin)")
	s.String(&keys, "signing-keys", "APPROVALS_SIGNING_KEYS", "", "keyring kid1:base64key,...; the first mints links", true)
	s.String(&baseURL, "base-url", "APPROVALS_BASE_URL", "", "public base URL of the redeemer", true)
	s.String(&channels, "channels", "APPROVALS_CHANNELS", "", "the worker's channels (JSON or @FILE), which a request's \"channels\" must name", false)
	s.String(&dir, "templates", "APPROVALS_TEMPLATES_DIR", "", "the worker's template overlay, which a request's \"template\" must name", false)
	s.Duration(&defExpiry, "default-expiry", "APPROVALS_DEFAULT_EXPIRY", worker.DefaultExpiry, "link lifetime when a request gives none", time.Minute, worker.MaxExpiry)
	var kr *link.Keyring
	var cc channel.Config
	s.Check(func() error {
		if file == "" {
			return errors.New("-request: required")
		}
		return nil
	})
	s.Check(func() error {
		if keys == "" {
			return nil // reported as required already
		}
		var err error
		if kr, err = link.ParseKeyring(keys); err != nil {
			return fmt.Errorf("APPROVALS_SIGNING_KEYS: %w", err)
		}
		return nil
	})
	s.Check(func() error {
		if baseURL == "" {
			return nil
		}
		if err := worker.CheckBaseURL(baseURL); err != nil {
			return fmt.Errorf("APPROVALS_BASE_URL: %w", err)
		}
		return nil
	})
	s.Check(func() error {
		var err error
		if cc, err = channel.Parse(channels); err != nil {
			return fmt.Errorf("APPROVALS_CHANNELS: %w", err)
		}
		return nil
	})
	if err := s.Parse(args); err != nil {
		return err // cli.Run exits 0 on flag.ErrHelp
	}

	tmpls, err := worker.LoadTemplates(dir)
	if err != nil {
		return err
	}
	body, err := readRequest(file)
	if err != nil {
		return err
	}
	req, err := worker.DecodeRequest(body, worker.DecodeOptions{
		Now: time.Now(), DefaultExpiry: defExpiry, Templates: tmpls, Channels: cc,
	})
	var ve *worker.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Fprintln(stderr, p)
		}
		return fmt.Errorf("invalid request: %d problems", len(ve.Problems))
	}
	if err != nil {
		return err
	}
	out, err := worker.Links(kr, baseURL, req)
	if err != nil {
		return err
	}
	if out == nil {
		out = []worker.Link{} // a notification: no links
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// readRequest reads at most one byte more of stdin than a request may hold,
// so that an oversized one is refused as the worker refuses it.
func readRequest(file string) ([]byte, error) {
	return readInput(file, io.LimitReader(os.Stdin, worker.MaxBodyBytes+1), "request")
}
