package awsx

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
)

// MaxIdleConnsPerHost is how many idle connections the SDK keeps to each AWS
// endpoint. The SDK's default (10) is far below the worker's concurrency:
// with 64 sends in flight, most connections were closed after each call and
// dialled again (a TLS handshake each, against AWS), which cost more CPU
// than the email itself.
const MaxIdleConnsPerHost = 512

// LoadConfig reads region, credentials and endpoints from the SDK's own
// chain (AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, the ECS
// task role), so nothing AWS-specific needs a flag of ours.
func LoadConfig(ctx context.Context) (aws.Config, error) {
	client := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 2 * MaxIdleConnsPerHost
		t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(client))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("load AWS configuration: no region; set AWS_REGION")
	}
	// Wrapped last: the SDK adds AWS_CA_BUNDLE to its own client type only.
	cfg.HTTPClient = HTTPClient{SDK: cfg.HTTPClient}
	return cfg, nil
}
