package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/envflag"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// previewBase is the base of the placeholder links in a preview: the
// .invalid top-level domain never resolves, so nobody mistakes them for
// working links.
const previewBase = "https://approvals.invalid/a/PREVIEW-"

func preview(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("preview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: approvals preview -template NAME [-data FILE] [-format html|text] [-templates DIR]")
		fmt.Fprintln(stderr, "\nRenders an email template as the worker would, with placeholder links, to stdout.")
		fs.PrintDefaults()
	}
	s := envflag.New(fs, nil)
	var name, dataFile, format, dir, subject, recipient string
	fs.StringVar(&name, "template", worker.DefaultApprovalTemplate, "email template to render")
	fs.StringVar(&dataFile, "data", "", "JSON file holding the request's \"data\" object ('-' for stdin; empty for none)")
	fs.StringVar(&format, "format", "html", "which part to print: html or text")
	fs.StringVar(&subject, "subject", "Preview: approve deployment 42", "the request's subject")
	fs.StringVar(&recipient, "recipient", "approver@example.com", "the recipient the email is for")
	s.String(&dir, "templates", "APPROVALS_TEMPLATES_DIR", "", "directory overlaying the embedded templates (email/NAME.html.tmpl, email/NAME.txt.tmpl)", false)
	s.Check(func() error {
		if format != "html" && format != "text" {
			return fmt.Errorf("-format: %q is neither html nor text", format)
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
	if !tmpls.Has(name) {
		return fmt.Errorf("no email template %q (have %s)", name, strings.Join(tmpls.Names(), ", "))
	}
	data, err := readData(dataFile)
	if err != nil {
		return err
	}
	d := worker.EmailData{
		Subject:      subject,
		Data:         data,
		Recipient:    recipient,
		Notification: name == worker.DefaultNotificationTemplate,
	}
	if !d.Notification {
		d.ExpiresAt = time.Now().Add(worker.DefaultExpiry).Truncate(time.Second).UTC()
		for _, a := range approval.DefaultActions() {
			d.Actions = append(d.Actions, worker.ActionLink{Name: a.Name, Label: a.DisplayLabel(), Type: string(a.Type), URL: previewBase + a.Name})
		}
	}
	r, err := tmpls.Render(name, d)
	if err != nil {
		return err
	}
	out := r.HTML
	if format == "text" {
		out = r.Text
	}
	_, err = io.WriteString(stdout, out)
	return err
}

// readData reads the "data" object the way the worker decodes it, numbers
// kept as written.
func readData(file string) (map[string]any, error) {
	data := map[string]any{}
	if file == "" {
		return data, nil
	}
	b, err := readInput(file, os.Stdin, "data")
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil || data == nil {
		return nil, fmt.Errorf("data file %s: want a JSON object", file)
	}
	return data, nil
}
