// deploy/cdk is TypeScript. This file only marks a module boundary, so that
// the Go files npm installs under node_modules (the cdk CLI's init templates)
// stay out of the main module's ./... (go build, vet, test).
module github.com/sfn-approvals/sfn-approvals/deploy/cdk

go 1.26.0
