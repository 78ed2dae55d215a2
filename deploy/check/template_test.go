package check

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// Parameter values for the checks; every parameter without a default
// needs one.
var testParams = map[string]any{
	"ImageUri":             "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfn-approvals:v1.0.0",
	"VpcId":                "vpc-0123456789abcdef0",
	"VpcCidr":              "10.0.0.0/16",
	"PublicSubnetIds":      []any{"subnet-a", "subnet-b"},
	"PrivateSubnetIds":     []any{"subnet-c", "subnet-d"},
	"DomainName":           "approvals.example.com",
	"CertificateArn":       "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
	"SenderAddress":        "approvals@example.com",
	"SenderIdentity":       "example.com",
	"ConfigurationSetName": "approvals",
	"SigningKeys":          "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	"Channels":             testChannels,
	// Ref to a Number parameter is a string in CloudFormation; here it
	// lands in a string property (an environment value).
	"WorkerConcurrency": "16",
}

// testChannels is an APPROVALS_CHANNELS value for the Channels parameter.
const testChannels = `{"ops": {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/X"}}`

func root(t *testing.T) string {
	t.Helper()
	r, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readJSON decodes the repository's file elem... into v and returns the
// file's bytes.
func readJSON(t *testing.T, v any, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{root(t)}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", filepath.Join(elem...), err)
	}
	return b
}

func mainTemplate(t *testing.T) *cloudformation.Template {
	t.Helper()
	tpl, err := OpenTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// Binaries are built once per test run, into a directory that outlives
// the first test that asks for them.
var (
	binsOnce sync.Once
	bins     map[string]string
	binsErr  error
	binsDir  string
)

func binaries(t *testing.T) map[string]string {
	t.Helper()
	binsOnce.Do(func() {
		binsDir, binsErr = mkdirTemp()
		if binsErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bins, binsErr = Build(ctx, root(t), binsDir, "worker", "redeemer")
	})
	if binsErr != nil {
		t.Fatal(binsErr)
	}
	return bins
}

// policyActions lists the actions each Allow statement of a role grants, by
// resource, and fails on any Deny-less wildcard action.
func roleActions(t *testing.T, tpl *cloudformation.Template, role string) []string {
	t.Helper()
	r, err := tpl.GetIAMRoleWithName(role)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, p := range r.Policies {
		doc, _ := p.PolicyDocument.(map[string]any)
		for _, st := range asList(doc["Statement"]) {
			st := st.(map[string]any)
			if st["Effect"] != "Allow" {
				continue
			}
			for _, a := range asList(st["Action"]) {
				a := a.(string)
				if strings.Contains(a, "*") {
					t.Errorf("%s grants a wildcard action %q", role, a)
				}
				actions = append(actions, a)
			}
		}
	}
	slices.Sort(actions)
	return actions
}

func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

func TestIAMLeastPrivilege(t *testing.T) {
	tpl := mainTemplate(t)
	tests := []struct {
		role string
		want []string
	}{
		{"WorkerTaskRole", []string{"ses:SendEmail", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage", "states:SendTaskFailure"}},
		{"RedeemerTaskRole", append(votesActions(t), "states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess")},
		{"TaskExecutionRole", []string{
			"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer",
			"logs:CreateLogStream", "logs:PutLogEvents", "secretsmanager:GetSecretValue",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, roleActions(t, tpl, tt.role)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
	// Every task role is assumable by ECS tasks only, and holds only the
	// inline policies read above: a managed policy (AWS's task execution
	// policy grants ECR and log actions on every resource) would escape them.
	for _, name := range []string{"WorkerTaskRole", "RedeemerTaskRole", "TaskExecutionRole"} {
		r, _ := tpl.GetIAMRoleWithName(name)
		if got := fmt.Sprint(r.AssumeRolePolicyDocument); !strings.Contains(got, "ecs-tasks.amazonaws.com") {
			t.Errorf("%s trust policy: %s", name, got)
		}
		if len(r.ManagedPolicyArns) > 0 {
			t.Errorf("%s has managed policies %v", name, r.ManagedPolicyArns)
		}
	}
}

// votesActions are the DynamoDB actions of the calls package votes makes:
// the methods of votes.Table, the interface the store calls the table
// through, so a call added there fails the check until the role grants it.
func votesActions(t *testing.T) []string {
	t.Helper()
	typ := reflect.TypeFor[votes.Table]()
	var out []string
	for i := range typ.NumMethod() {
		out = append(out, "dynamodb:"+typ.Method(i).Name)
	}
	slices.Sort(out)
	if len(out) == 0 {
		t.Fatal("votes.Table has no methods")
	}
	return out
}

// The votes table is what the store expects (keys pk and sk, strings; TTL
// on ttl) and what an audit record needs (point-in-time recovery,
// encryption, on-demand so a burst of votes is never throttled); only the
// redeemer may touch it, and only that table; both services get its name.
func TestVotesTable(t *testing.T) {
	tpl := mainTemplate(t)
	tab, err := tpl.GetDynamoDBTableWithName("VotesTable")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, k := range tab.KeySchema {
		keys[k.KeyType] = k.AttributeName
	}
	types := map[string]string{}
	for _, a := range tab.AttributeDefinitions {
		types[a.AttributeName] = a.AttributeType
	}
	if diff := cmp.Diff(map[string]string{"HASH": "pk", "RANGE": "sk"}, keys); diff != "" {
		t.Errorf("key schema (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"pk": "S", "sk": "S"}, types); diff != "" {
		t.Errorf("attribute types (-want +got):\n%s", diff)
	}
	switch {
	case tab.BillingMode == nil || *tab.BillingMode != "PAY_PER_REQUEST":
		t.Errorf("billing mode %v, want PAY_PER_REQUEST", tab.BillingMode)
	case tab.TimeToLiveSpecification == nil || tab.TimeToLiveSpecification.AttributeName == nil ||
		*tab.TimeToLiveSpecification.AttributeName != "ttl" || !tab.TimeToLiveSpecification.Enabled:
		t.Errorf("TTL %+v, want enabled on ttl", tab.TimeToLiveSpecification)
	case tab.PointInTimeRecoverySpecification == nil || tab.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled == nil ||
		!*tab.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled:
		t.Errorf("point-in-time recovery not enabled")
	case tab.SSESpecification == nil || !tab.SSESpecification.SSEEnabled:
		t.Errorf("server-side encryption not enabled")
	}
	for _, a := range votesActions(t) {
		if diff := cmp.Diff([]string{"getatt:VotesTable.Arn"}, roleResources(tpl, "RedeemerTaskRole", a)); diff != "" {
			t.Errorf("%s resources (-want +got):\n%s", a, diff)
		}
	}
	for _, td := range []string{"WorkerTaskDefinition", "RedeemerTaskDefinition"} {
		def, err := tpl.GetECSTaskDefinitionWithName(td)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range def.ContainerDefinitions {
			for _, e := range c.Environment {
				if e.Name != nil && *e.Name == "APPROVALS_VOTES_TABLE" && e.Value != nil {
					got = append(got, *e.Value)
				}
			}
		}
		if diff := cmp.Diff([]string{"ref:VotesTable"}, got); diff != "" {
			t.Errorf("%s APPROVALS_VOTES_TABLE (-want +got):\n%s", td, diff)
		}
	}
}

// roleResources lists the resources a role's statements grant action on.
func roleResources(tpl *cloudformation.Template, role, action string) []string {
	r, _ := tpl.GetIAMRoleWithName(role)
	var out []string
	for _, p := range r.Policies {
		for _, st := range asList(p.PolicyDocument.(map[string]any)["Statement"]) {
			st, _ := st.(map[string]any)
			for _, a := range asList(st["Action"]) {
				if a == action {
					for _, res := range asList(st["Resource"]) {
						if res != nil {
							out = append(out, fmt.Sprint(res))
						}
					}
				}
			}
		}
	}
	return out
}

// The execution role pulls from the image's own repository, whichever
// account and region hold it, and writes to the stack's log groups only.
func TestTaskExecutionRoleScope(t *testing.T) {
	tests := []struct {
		image     string
		wantPull  []string
		wantToken []string
	}{
		{
			image:     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfn-approvals:v1.0.0",
			wantPull:  []string{"arn:aws:ecr:eu-west-1:123456789012:repository/sfn-approvals"},
			wantToken: []string{"*"},
		},
		{
			image:     "210987654321.dkr.ecr.us-east-2.amazonaws.com/platform/sfn-approvals@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			wantPull:  []string{"arn:aws:ecr:us-east-2:210987654321:repository/platform/sfn-approvals"},
			wantToken: []string{"*"},
		},
		{
			image:     "210987654321.dkr.ecr.us-east-2.amazonaws.com/platform/sfn-approvals:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			wantPull:  []string{"arn:aws:ecr:us-east-2:210987654321:repository/platform/sfn-approvals"},
			wantToken: []string{"*"},
		},
		// Public images need no ECR permission at all.
		{image: "ghcr.io/sfn-approvals/sfn-approvals:v1.0.0"},
		{image: "public.ecr.aws/sfn-approvals/sfn-approvals:v1.0.0"},
		{image: "sfn-approvals"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			params := maps.Clone(testParams)
			params["ImageUri"] = tt.image
			tpl, err := OpenTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"), params)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"} {
				if diff := cmp.Diff(tt.wantPull, roleResources(tpl, "TaskExecutionRole", a)); diff != "" {
					t.Errorf("%s resources (-want +got):\n%s", a, diff)
				}
			}
			if diff := cmp.Diff(tt.wantToken, roleResources(tpl, "TaskExecutionRole", "ecr:GetAuthorizationToken")); diff != "" {
				t.Errorf("ecr:GetAuthorizationToken resources (-want +got):\n%s", diff)
			}
			logs := []string{"getatt:WorkerLogGroup.Arn", "getatt:RedeemerLogGroup.Arn"}
			for _, a := range []string{"logs:CreateLogStream", "logs:PutLogEvents"} {
				if diff := cmp.Diff(logs, roleResources(tpl, "TaskExecutionRole", a)); diff != "" {
					t.Errorf("%s resources (-want +got):\n%s", a, diff)
				}
			}
			// Only GetAuthorizationToken, which IAM cannot scope, is on "*".
			r, _ := tpl.GetIAMRoleWithName("TaskExecutionRole")
			for _, p := range r.Policies {
				for _, st := range asList(p.PolicyDocument.(map[string]any)["Statement"]) {
					st, _ := st.(map[string]any)
					if slices.Contains(asList(st["Resource"]), any("*")) && fmt.Sprint(st["Action"]) != "ecr:GetAuthorizationToken" {
						t.Errorf("%v granted on every resource", st["Action"])
					}
				}
			}
		})
	}
}

// Cloud Map's custom health check takes no FailureThreshold any more (it
// is always 1); ECS reports the tasks' health.
func TestDiscoveryHealthCheck(t *testing.T) {
	tpl := mainTemplate(t)
	for _, name := range []string{"WorkerDiscovery", "RedeemerDiscovery"} {
		s, err := tpl.GetServiceDiscoveryServiceWithName(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.HealthCheckCustomConfig == nil {
			t.Errorf("%s has no custom health check: ECS cannot report its tasks' health", name)
		} else if s.HealthCheckCustomConfig.FailureThreshold != nil {
			t.Errorf("%s sets the unsupported FailureThreshold", name)
		}
	}
}

func TestIAMResources(t *testing.T) {
	tpl := mainTemplate(t)
	resources := func(role, action string) []string { return roleResources(tpl, role, action) }
	for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} {
		if diff := cmp.Diff([]string{"getatt:RequestQueue.Arn"}, resources("WorkerTaskRole", a)); diff != "" {
			t.Errorf("%s resources (-want +got):\n%s", a, diff)
		}
	}
	want := []string{
		"arn:aws:ses:us-east-1:123456789012:identity/example.com",
		"arn:aws:ses:us-east-1:123456789012:configuration-set/approvals",
	}
	if diff := cmp.Diff(want, resources("WorkerTaskRole", "ses:SendEmail")); diff != "" {
		t.Errorf("ses:SendEmail resources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ref:SigningKeysSecret", "ref:ChannelsSecret"}, resources("TaskExecutionRole", "secretsmanager:GetSecretValue")); diff != "" {
		t.Errorf("GetSecretValue resources (-want +got):\n%s", diff)
	}
}

// Channels live in their own secret, injected into the worker alone; the
// execution role reads exactly the stack's secrets. Without the parameter
// there is no secret, no grant and no variable.
func TestChannelsSecret(t *testing.T) {
	tpl := mainTemplate(t)
	sec, err := tpl.GetSecretsManagerSecretWithName("ChannelsSecret")
	if err != nil {
		t.Fatal(err)
	}
	if deref(sec.SecretString) != testChannels {
		t.Error("the channels secret does not hold the Channels parameter")
	}
	if p := tpl.Parameters["Channels"]; p.NoEcho == nil || !*p.NoEcho {
		t.Error("Channels is not NoEcho: webhook URLs are credentials")
	}
	if got := containerOf(t, tpl, "WorkerTaskDefinition").env(t)["APPROVALS_CHANNELS"]; got != "secret:ref:ChannelsSecret" {
		t.Errorf("worker APPROVALS_CHANNELS = %q, want it from ChannelsSecret", got)
	}
	if got, ok := containerOf(t, tpl, "RedeemerTaskDefinition").env(t)["APPROVALS_CHANNELS"]; ok {
		t.Errorf("the redeemer gets APPROVALS_CHANNELS (%q); only the worker posts", got)
	}

	raw, err := ProcessTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"))
	if err != nil {
		t.Fatal(err)
	}
	res := raw["Resources"].(map[string]any)["ChannelsSecret"].(map[string]any)
	if res["Condition"] != "HasChannels" {
		t.Errorf("ChannelsSecret has condition %v, want HasChannels (an empty secret is refused)", res["Condition"])
	}
	params := maps.Clone(testParams)
	params["Channels"] = ""
	tpl, err = OpenTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"), params)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ref:SigningKeysSecret"}, roleResources(tpl, "TaskExecutionRole", "secretsmanager:GetSecretValue")); diff != "" {
		t.Errorf("without channels, GetSecretValue resources (-want +got):\n%s", diff)
	}
	if got, ok := containerOf(t, tpl, "WorkerTaskDefinition").env(t)["APPROVALS_CHANNELS"]; ok {
		t.Errorf("without channels, the worker gets APPROVALS_CHANNELS = %q", got)
	}
}

// Without a configuration set, SendEmail is granted on the identity only.
func TestIAMWithoutConfigurationSet(t *testing.T) {
	params := map[string]any{}
	for k, v := range testParams {
		params[k] = v
	}
	params["ConfigurationSetName"] = ""
	tpl, err := OpenTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"), params)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := tpl.GetIAMRoleWithName("WorkerTaskRole")
	got := fmt.Sprint(r.Policies[0].PolicyDocument)
	if strings.Contains(got, "configuration-set") {
		t.Errorf("configuration set granted although none is configured: %s", got)
	}
}

type container struct {
	def     ecs.TaskDefinition_ContainerDefinition
	taskDef *ecs.TaskDefinition
}

func containerOf(t *testing.T, tpl *cloudformation.Template, taskDef string) container {
	t.Helper()
	td, err := tpl.GetECSTaskDefinitionWithName(taskDef)
	if err != nil {
		t.Fatal(err)
	}
	if len(td.ContainerDefinitions) != 1 {
		t.Fatalf("%s: %d containers, want 1", taskDef, len(td.ContainerDefinitions))
	}
	return container{def: td.ContainerDefinitions[0], taskDef: td}
}

// env returns a container's variables, each marked "secret" or its value.
func (c container) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kv := range c.def.Environment {
		if kv.Name == nil {
			continue // an entry dropped by !If ... AWS::NoValue
		}
		if _, dup := out[*kv.Name]; dup {
			t.Errorf("%s set twice", *kv.Name)
		}
		v := ""
		if kv.Value != nil {
			v = *kv.Value
		}
		out[*kv.Name] = v
	}
	for _, s := range c.def.Secrets {
		if s.Name == "" {
			continue // an entry dropped by !If ... AWS::NoValue
		}
		if _, dup := out[s.Name]; dup {
			t.Errorf("%s set twice", s.Name)
		}
		out[s.Name] = "secret:" + s.ValueFrom
	}
	return out
}

// The variables each task definition sets must be exactly ones its binary
// reads (a typo would be silently ignored), and include the required ones.
func TestTaskEnvironmentMatchesBinaries(t *testing.T) {
	tpl := mainTemplate(t)
	bins := binaries(t)
	tests := []struct {
		bin, taskDef string
		want         map[string]string
	}{
		{"worker", "WorkerTaskDefinition", map[string]string{
			"APPROVALS_QUEUE_URL":         "ref:RequestQueue",
			"APPROVALS_SENDER":            "approvals@example.com",
			"APPROVALS_BASE_URL":          "https://approvals.example.com",
			"APPROVALS_SIGNING_KEYS":      "secret:ref:SigningKeysSecret",
			"APPROVALS_CHANNELS":          "secret:ref:ChannelsSecret",
			"APPROVALS_CONCURRENCY":       "16",
			"APPROVALS_METRICS_ADDR":      ":9090",
			"APPROVALS_CONFIGURATION_SET": "approvals",
			"APPROVALS_SHUTDOWN_GRACE":    "30s",
			"APPROVALS_VOTES_TABLE":       "ref:VotesTable",
		}},
		{"redeemer", "RedeemerTaskDefinition", map[string]string{
			"APPROVALS_BASE_URL":     "https://approvals.example.com",
			"APPROVALS_SIGNING_KEYS": "secret:ref:SigningKeysSecret",
			"APPROVALS_LISTEN_ADDR":  ":8080",
			"APPROVALS_METRICS_ADDR": ":9090",
			// Behind the load balancer, which alone reaches the redeemer.
			"APPROVALS_RATE_LIMIT":          "10",
			"APPROVALS_RATE_BURST":          "100",
			"APPROVALS_TRUST_PROXY_HEADERS": "true",
			"APPROVALS_IDENTITY":            "link", // "alb" with sign-in: signin_test.go
			"APPROVALS_VOTES_TABLE":         "ref:VotesTable",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.bin, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			reads, err := EnvVars(ctx, bins[tt.bin])
			if err != nil {
				t.Fatal(err)
			}
			got := containerOf(t, tpl, tt.taskDef).env(t)
			for name := range got {
				if _, ok := reads[name]; !ok && !strings.HasPrefix(name, "AWS_") {
					t.Errorf("%s sets %s, which %s does not read (it reads %v)", tt.taskDef, name, tt.bin, Sorted(reads))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s environment (-want +got):\n%s", tt.taskDef, diff)
			}
			// Every variable the binary refuses to start without is set.
			required, err := RequiredEnvVars(ctx, bins[tt.bin])
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range required {
				if _, ok := got[name]; !ok {
					t.Errorf("%s does not set %s, which %s requires", tt.taskDef, name, tt.bin)
				}
			}
		})
	}
}

func TestContainers(t *testing.T) {
	tpl := mainTemplate(t)
	tests := []struct {
		taskDef, name, command, role, logGroup string
		ports                                  []int
	}{
		{"WorkerTaskDefinition", "worker", "worker", "getatt:WorkerTaskRole.Arn", "ref:WorkerLogGroup", []int{9090}},
		{"RedeemerTaskDefinition", "redeemer", "redeemer", "getatt:RedeemerTaskRole.Arn", "ref:RedeemerLogGroup", []int{8080, 9090}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := containerOf(t, tpl, tt.taskDef)
			if c.def.Name != tt.name {
				t.Errorf("container name %q, want %q", c.def.Name, tt.name)
			}
			if diff := cmp.Diff([]string{tt.command}, c.def.Command); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
			if c.def.Image != testParams["ImageUri"] {
				t.Errorf("image %q", c.def.Image)
			}
			var ports []int
			for _, p := range c.def.PortMappings {
				ports = append(ports, *p.ContainerPort)
			}
			if diff := cmp.Diff(tt.ports, ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if got := deref(c.taskDef.TaskRoleArn); got != tt.role {
				t.Errorf("task role %q, want %q", got, tt.role)
			}
			if got := deref(c.taskDef.ExecutionRoleArn); got != "getatt:TaskExecutionRole.Arn" {
				t.Errorf("execution role %q", got)
			}
			if c.def.ReadonlyRootFilesystem == nil || !*c.def.ReadonlyRootFilesystem {
				t.Error("root filesystem is writable")
			}
			if c.def.LogConfiguration == nil || c.def.LogConfiguration.LogDriver != "awslogs" ||
				c.def.LogConfiguration.Options["awslogs-group"] != tt.logGroup {
				t.Errorf("log configuration %+v", c.def.LogConfiguration)
			}
			if diff := cmp.Diff([]string{"FARGATE"}, c.taskDef.RequiresCompatibilities); diff != "" {
				t.Errorf("compatibilities (-want +got):\n%s", diff)
			}
		})
	}
}

// ECS kills the worker StopTimeout after SIGTERM: that must leave room for
// the drain the worker is configured to take.
func TestWorkerStopTimeoutCoversShutdownGrace(t *testing.T) {
	c := containerOf(t, mainTemplate(t), "WorkerTaskDefinition")
	grace, err := time.ParseDuration(c.env(t)["APPROVALS_SHUTDOWN_GRACE"])
	if err != nil {
		t.Fatal(err)
	}
	if c.def.StopTimeout == nil {
		t.Fatal("no StopTimeout")
	}
	stop := time.Duration(*c.def.StopTimeout) * time.Second
	if stop < grace+10*time.Second || stop > 120*time.Second {
		t.Errorf("StopTimeout %s: want at least grace %s + 10s, at most Fargate's 120s", stop, grace)
	}
}

func TestLoadBalancer(t *testing.T) {
	tpl := mainTemplate(t)
	tg, err := tpl.GetElasticLoadBalancingV2TargetGroupWithName("RedeemerTargetGroup")
	if err != nil {
		t.Fatal(err)
	}
	if deref(tg.HealthCheckPath) != "/healthz" || derefInt(tg.Port) != 8080 || deref(tg.TargetType) != "ip" ||
		deref(tg.HealthCheckPort) != "traffic-port" || tg.Matcher == nil || deref(tg.Matcher.HttpCode) != "200" {
		t.Errorf("target group: path %q port %d type %q hc port %q matcher %+v",
			deref(tg.HealthCheckPath), derefInt(tg.Port), deref(tg.TargetType), deref(tg.HealthCheckPort), tg.Matcher)
	}
	ls, err := tpl.GetElasticLoadBalancingV2ListenerWithName("HttpsListener")
	if err != nil {
		t.Fatal(err)
	}
	if derefInt(ls.Port) != 443 || deref(ls.Protocol) != "HTTPS" || len(ls.Certificates) != 1 ||
		deref(ls.Certificates[0].CertificateArn) != testParams["CertificateArn"] {
		t.Errorf("listener: %d %s %+v", derefInt(ls.Port), deref(ls.Protocol), ls.Certificates)
	}
	if len(ls.DefaultActions) != 1 || deref(ls.DefaultActions[0].TargetGroupArn) != "ref:RedeemerTargetGroup" {
		t.Errorf("listener actions: %+v", ls.DefaultActions)
	}
	// Only the redeemer's HTTP port is behind the load balancer.
	listeners := tpl.GetAllElasticLoadBalancingV2ListenerResources()
	if len(listeners) != 1 {
		t.Errorf("%d listeners, want only HTTPS", len(listeners))
	}
	svc, err := tpl.GetECSServiceWithName("RedeemerService")
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.LoadBalancers) != 1 || deref(svc.LoadBalancers[0].ContainerName) != "redeemer" ||
		derefInt(svc.LoadBalancers[0].ContainerPort) != 8080 || deref(svc.LoadBalancers[0].TargetGroupArn) != "ref:RedeemerTargetGroup" {
		t.Errorf("redeemer service load balancers: %+v", svc.LoadBalancers)
	}
	w, err := tpl.GetECSServiceWithName("WorkerService")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.LoadBalancers) != 0 {
		t.Error("the worker is behind a load balancer")
	}
}

type ingress struct {
	Group, Source string
	Port          int
}

// Only the load balancer is open to the internet, on 443; tasks accept the
// load balancer on 8080 (redeemer) and the VPC on the metrics port.
func TestSecurityGroups(t *testing.T) {
	tpl := mainTemplate(t)
	var got []ingress
	for name, sg := range tpl.GetAllEC2SecurityGroupResources() {
		for _, r := range sg.SecurityGroupIngress {
			if derefInt(r.FromPort) != derefInt(r.ToPort) {
				t.Errorf("%s opens a port range %d-%d", name, derefInt(r.FromPort), derefInt(r.ToPort))
			}
			got = append(got, ingress{name, source(r.CidrIp, r.CidrIpv6, r.SourceSecurityGroupId), derefInt(r.FromPort)})
		}
	}
	for name, r := range tpl.GetAllEC2SecurityGroupIngressResources() {
		if derefInt(r.FromPort) != derefInt(r.ToPort) {
			t.Errorf("%s opens a port range", name)
		}
		got = append(got, ingress{strings.TrimPrefix(deref(r.GroupId), "ref:"), source(r.CidrIp, r.CidrIpv6, r.SourceSecurityGroupId), derefInt(r.FromPort)})
	}
	slices.SortFunc(got, func(a, b ingress) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	want := []ingress{
		{"LoadBalancerSecurityGroup", "0.0.0.0/0", 443},
		{"LoadBalancerSecurityGroup", "::/0", 443},
		{"RedeemerSecurityGroup", "10.0.0.0/16", 9090},
		{"RedeemerSecurityGroup", "ref:LoadBalancerSecurityGroup", 8080},
		{"WorkerSecurityGroup", "10.0.0.0/16", 9090},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ingress rules (-want +got):\n%s", diff)
	}
	// The load balancer reaches the redeemer's port and nothing else.
	lb, _ := tpl.GetEC2SecurityGroupWithName("LoadBalancerSecurityGroup")
	if len(lb.SecurityGroupEgress) != 1 || derefInt(lb.SecurityGroupEgress[0].FromPort) != 8080 ||
		deref(lb.SecurityGroupEgress[0].DestinationSecurityGroupId) != "ref:RedeemerSecurityGroup" {
		t.Errorf("load balancer egress: %+v", lb.SecurityGroupEgress)
	}
	// And each service runs in its own group, in the private subnets.
	for svcName, sg := range map[string]string{"WorkerService": "ref:WorkerSecurityGroup", "RedeemerService": "ref:RedeemerSecurityGroup"} {
		svc, _ := tpl.GetECSServiceWithName(svcName)
		nc := svc.NetworkConfiguration.AwsvpcConfiguration
		if diff := cmp.Diff([]string{sg}, nc.SecurityGroups); diff != "" {
			t.Errorf("%s security groups (-want +got):\n%s", svcName, diff)
		}
		if diff := cmp.Diff([]string{"subnet-c", "subnet-d"}, nc.Subnets); diff != "" {
			t.Errorf("%s subnets (-want +got):\n%s", svcName, diff)
		}
	}
}

func source(cidr, cidr6, sg *string) string {
	switch {
	case cidr != nil:
		return *cidr
	case cidr6 != nil:
		return *cidr6
	default:
		return deref(sg)
	}
}

func TestQueues(t *testing.T) {
	tpl := mainTemplate(t)
	for _, name := range []string{"RequestQueue", "RequestDeadLetterQueue"} {
		q, err := tpl.GetSQSQueueWithName(name)
		if err != nil {
			t.Fatal(err)
		}
		if q.SqsManagedSseEnabled == nil || !*q.SqsManagedSseEnabled {
			if q.KmsMasterKeyId == nil {
				t.Errorf("%s is not encrypted at rest", name)
			}
		}
	}
	q, _ := tpl.GetSQSQueueWithName("RequestQueue")
	rp, _ := q.RedrivePolicy.(map[string]any)
	if rp["deadLetterTargetArn"] != "getatt:RequestDeadLetterQueue.Arn" || rp["maxReceiveCount"] == nil {
		t.Errorf("redrive policy %v", q.RedrivePolicy)
	}
	if derefInt(q.ReceiveMessageWaitTimeSeconds) != 20 {
		t.Errorf("long polling: %d", derefInt(q.ReceiveMessageWaitTimeSeconds))
	}
	dlq, _ := tpl.GetSQSQueueWithName("RequestDeadLetterQueue")
	if derefInt(dlq.MessageRetentionPeriod) <= derefInt(q.MessageRetentionPeriod) {
		t.Error("the DLQ must keep messages longer than the queue, or redriven messages expire")
	}
	sec, err := tpl.GetSecretsManagerSecretWithName("SigningKeysSecret")
	if err != nil {
		t.Fatal(err)
	}
	if deref(sec.SecretString) != testParams["SigningKeys"] {
		t.Error("the keyring secret does not hold the SigningKeys parameter")
	}
	if p := tpl.Parameters["SigningKeys"]; p.NoEcho == nil || !*p.NoEcho {
		t.Error("SigningKeys is not NoEcho")
	}
}

func TestAutoscalingAndAlarms(t *testing.T) {
	tpl := mainTemplate(t)
	st, err := tpl.GetApplicationAutoScalingScalableTargetWithName("WorkerScalableTarget")
	if err != nil {
		t.Fatal(err)
	}
	if st.ScalableDimension != "ecs:service:DesiredCount" || st.MinCapacity < 1 || st.MaxCapacity < st.MinCapacity {
		t.Errorf("scalable target %+v", st)
	}
	pol, err := tpl.GetApplicationAutoScalingScalingPolicyWithName("WorkerBacklogScaling")
	if err != nil {
		t.Fatal(err)
	}
	cfg := pol.TargetTrackingScalingPolicyConfiguration
	if cfg == nil || cfg.CustomizedMetricSpecification == nil {
		t.Fatal("worker scaling is not target tracking on a custom metric")
	}
	var queues []string
	for _, m := range cfg.CustomizedMetricSpecification.Metrics {
		if m.MetricStat != nil && deref(m.MetricStat.Metric.Namespace) == "AWS/SQS" {
			for _, d := range m.MetricStat.Metric.Dimensions {
				queues = append(queues, deref(d.Value))
			}
		}
	}
	if diff := cmp.Diff([]string{"getatt:RequestQueue.QueueName"}, queues); diff != "" {
		t.Errorf("scaling follows (-want +got):\n%s", diff)
	}

	alarms := map[string]string{} // metric -> queue
	for _, a := range tpl.GetAllCloudWatchAlarmResources() {
		if deref(a.Namespace) == "AWS/SQS" && len(a.Dimensions) == 1 {
			alarms[deref(a.MetricName)] = a.Dimensions[0].Value
		}
	}
	want := map[string]string{
		"ApproximateNumberOfMessagesVisible": "getatt:RequestDeadLetterQueue.QueueName",
		"ApproximateAgeOfOldestMessage":      "getatt:RequestQueue.QueueName",
	}
	if diff := cmp.Diff(want, alarms); diff != "" {
		t.Errorf("alarms (-want +got):\n%s", diff)
	}
}

// The template's parameters cover network, sender identity and domain, and
// none is unused.
func TestParameters(t *testing.T) {
	raw, err := ProcessTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"))
	if err != nil {
		t.Fatal(err)
	}
	params := parameters(raw)
	for _, p := range []string{"VpcId", "PublicSubnetIds", "PrivateSubnetIds", "SenderAddress", "SenderIdentity", "DomainName", "CertificateArn", "ImageUri"} {
		if _, ok := params[p]; !ok {
			t.Errorf("no parameter %s", p)
		}
	}
	// A keyring as `approvals keygen` prints it passes the parameter's
	// AllowedPattern (a simple pattern, the same in Go and CloudFormation).
	key1, err1 := link.GenerateKey()
	key2, err2 := link.GenerateKey()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	pattern := regexp.MustCompile(params["SigningKeys"].(map[string]any)["AllowedPattern"].(string))
	for _, keys := range []string{key1, key1 + "," + key2} {
		if !pattern.MatchString(keys) {
			t.Errorf("SigningKeys AllowedPattern refuses a generated keyring")
		}
	}
	if pattern.MatchString(key1 + ",") {
		t.Error("SigningKeys AllowedPattern accepts a trailing comma")
	}

	body := fmt.Sprint(raw["Resources"], raw["Conditions"])
	for p := range params {
		if !strings.Contains(body, "Ref:"+p+"]") && !strings.Contains(body, "${"+p+"}") {
			t.Errorf("parameter %s is not used", p)
		}
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
