package awsx

// Blank imports pin the SDK clients in go.mod while the services that use
// them are written; removed once each has a real importer.
import (
	_ "github.com/aws/aws-sdk-go-v2/service/sesv2"
	_ "github.com/aws/aws-sdk-go-v2/service/sfn"
	_ "github.com/aws/aws-sdk-go-v2/service/sqs"
	_ "github.com/google/go-cmp/cmp"
	_ "go.uber.org/goleak"
)
