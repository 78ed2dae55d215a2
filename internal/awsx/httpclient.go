package awsx

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// HTTPClient wraps the SDK's HTTP client (SDK) so that net/http can always
// finish writing a request body. Every AWS client of the project sends
// through it (LoadConfig).
//
// The SDK hands net/http each request body in a wrapper that answers io.EOF
// from WriteTo once the SDK has closed it, and it closes it as soon as the
// answer's headers are in, while net/http's writer may not be done: after
// the body's bytes are sent it calls WriteTo once more, to check that
// nothing is left over. When the answer comes back before that check (a
// fast answer on a busy machine), net/http takes the io.EOF for a failed
// write and closes the connection under the answer still being read, and
// the SDK retries. For a ReceiveMessage the first answer is then lost
// although SQS handed its messages out: they stay invisible for the queue's
// whole visibility timeout.
type HTTPClient struct {
	SDK aws.HTTPClient
}

// Do sends req with its body stripped of WriteTo, so net/http's last check
// reads it instead: a closed body then reads as finished, which it is.
func (c HTTPClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.WithContext(req.Context())
		req.Body = readCloser{req.Body}
	}
	return c.SDK.Do(req)
}

// readCloser hides every method of its body but Read and Close.
type readCloser struct{ body io.ReadCloser }

func (r readCloser) Read(p []byte) (int, error) { return r.body.Read(p) }
func (r readCloser) Close() error               { return r.body.Close() }
