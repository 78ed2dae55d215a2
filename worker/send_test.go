package worker

import (
	"net/mail"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
)

func TestEmailInput(t *testing.T) {
	h := &Handler{Sender: "Approvals <approvals@example.com>", ConfigurationSet: "approvals"}
	req := &Request{
		Subject: "Deploy 42",
		ReplyTo: []mail.Address{{Address: "lead@example.com"}, {Name: "Zoë", Address: "zoe@example.com"}},
	}
	in := h.emailInput(req, mail.Address{Name: "Ben", Address: "ben@example.com"}, Rendered{HTML: "<p>h</p>", Text: "t"})
	if diff := cmp.Diff([]string{`"Ben" <ben@example.com>`}, in.Destination.ToAddresses); diff != "" {
		t.Errorf("To (-want +got):\n%s", diff)
	}
	if len(in.Destination.CcAddresses)+len(in.Destination.BccAddresses) != 0 {
		t.Errorf("cc/bcc set: %+v", in.Destination)
	}
	if diff := cmp.Diff([]string{"lead@example.com", "=?utf-8?q?Zo=C3=AB?= <zoe@example.com>"}, in.ReplyToAddresses); diff != "" {
		t.Errorf("ReplyTo (-want +got):\n%s", diff)
	}
	s := in.Content.Simple
	if aws.ToString(in.ConfigurationSetName) != "approvals" || aws.ToString(in.FromEmailAddress) != h.Sender ||
		aws.ToString(s.Subject.Data) != "Deploy 42" || aws.ToString(s.Body.Html.Data) != "<p>h</p>" || aws.ToString(s.Body.Text.Data) != "t" ||
		aws.ToString(s.Body.Html.Charset) != "UTF-8" {
		t.Errorf("input = %+v", in)
	}
	h.ConfigurationSet = ""
	if in := h.emailInput(req, mail.Address{Address: "ben@example.com"}, Rendered{}); in.ConfigurationSetName != nil || in.Destination.ToAddresses[0] != "ben@example.com" {
		t.Errorf("no configuration set / bare address: %v %v", in.ConfigurationSetName, in.Destination.ToAddresses)
	}
}
