package check

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/elasticloadbalancingv2"
	"github.com/google/go-cmp/cmp"
)

const oidcSecretArn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:approvals-oidc-AbCdEf"

// The template's two sign-in shapes beside the one without.
var signInShapes = map[string]map[string]any{
	"none": {},
	"oidc": {
		"OidcIssuer":                "https://example.okta.com",
		"OidcAuthorizationEndpoint": "https://example.okta.com/oauth2/v1/authorize",
		"OidcTokenEndpoint":         "https://example.okta.com/oauth2/v1/token",
		"OidcUserInfoEndpoint":      "https://example.okta.com/oauth2/v1/userinfo",
		"OidcClientId":              "0oa1approvals",
		"OidcClientSecretArn":       oidcSecretArn,
	},
	"cognito": {
		"CognitoUserPoolArn":      "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEfGhI",
		"CognitoUserPoolClientId": "1example23456789",
		"CognitoUserPoolDomain":   "approvals-example",
	},
}

func templatePath(t *testing.T) string {
	return filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml")
}

func withParams(extra map[string]any) map[string]any {
	p := maps.Clone(testParams)
	maps.Copy(p, extra)
	return p
}

func shapeTemplate(t *testing.T, extra map[string]any) *cloudformation.Template {
	t.Helper()
	tpl, err := OpenTemplate(templatePath(t), withParams(extra))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// rawWith is the unprocessed template with params as its parameters'
// defaults, which is how Ref reads them, for conditions and rules.
func rawWith(t *testing.T, params map[string]any) map[string]any {
	t.Helper()
	raw, err := ProcessTemplate(templatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range params {
		if p, ok := parameters(raw)[name].(map[string]any); ok {
			p["Default"] = v
		}
	}
	return raw
}

// holds decides a resource's Condition ("" holds always).
func holds(t *testing.T, params map[string]any, cond string) bool {
	t.Helper()
	return cond == "" || evalCondition(rawWith(t, params), cond)
}

// failedRules lists the template's Rules whose assertions refuse params.
func failedRules(t *testing.T, params map[string]any) []string {
	t.Helper()
	raw := rawWith(t, params)
	rules, _ := raw["Rules"].(map[string]any)
	var failed []string
	for name, r := range rules {
		r := r.(map[string]any)
		if c, ok := r["RuleCondition"]; ok && !evalExpr(raw, c).(bool) {
			continue
		}
		for _, a := range asList(r["Assertions"]) {
			if !evalExpr(raw, a.(map[string]any)["Assert"]).(bool) {
				failed = append(failed, name)
			}
		}
	}
	return failed
}

// With sign-in the listener authenticates, then forwards; without, it
// forwards. The scope includes email: the redeemer matches it.
func TestSignInListener(t *testing.T) {
	forward := elasticloadbalancingv2.Listener_Action{Type: "forward", TargetGroupArn: ptr("ref:RedeemerTargetGroup")}
	forward2 := forward
	forward2.Order = ptr(2)
	tests := map[string][]elasticloadbalancingv2.Listener_Action{
		"none": {forward},
		"oidc": {{
			Type: "authenticate-oidc", Order: ptr(1),
			AuthenticateOidcConfig: &elasticloadbalancingv2.Listener_AuthenticateOidcConfig{
				Issuer:                   "https://example.okta.com",
				AuthorizationEndpoint:    "https://example.okta.com/oauth2/v1/authorize",
				TokenEndpoint:            "https://example.okta.com/oauth2/v1/token",
				UserInfoEndpoint:         "https://example.okta.com/oauth2/v1/userinfo",
				ClientId:                 "0oa1approvals",
				ClientSecret:             ptr("{{resolve:secretsmanager:" + oidcSecretArn + ":SecretString}}"),
				Scope:                    ptr("openid email"),
				SessionTimeout:           ptr("3600"),
				OnUnauthenticatedRequest: ptr("authenticate"),
			},
		}, forward2},
		"cognito": {{
			Type: "authenticate-cognito", Order: ptr(1),
			AuthenticateCognitoConfig: &elasticloadbalancingv2.Listener_AuthenticateCognitoConfig{
				UserPoolArn:              "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEfGhI",
				UserPoolClientId:         "1example23456789",
				UserPoolDomain:           "approvals-example",
				Scope:                    ptr("openid email"),
				SessionTimeout:           ptr("3600"),
				OnUnauthenticatedRequest: ptr("authenticate"),
			},
		}, forward2},
	}
	for shape, want := range tests {
		t.Run(shape, func(t *testing.T) {
			tpl := shapeTemplate(t, signInShapes[shape])
			ls, err := tpl.GetElasticLoadBalancingV2ListenerWithName("HttpsListener")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, ls.DefaultActions); diff != "" {
				t.Errorf("listener actions (-want +got):\n%s", diff)
			}
		})
	}
}

// /healthz stays open with sign-in: a listener rule forwards it without
// authenticating. Without sign-in there is no rule (the default action
// forwards everything).
func TestSignInHealthzRule(t *testing.T) {
	for shape, params := range signInShapes {
		t.Run(shape, func(t *testing.T) {
			tpl := shapeTemplate(t, params)
			rules := tpl.GetAllElasticLoadBalancingV2ListenerRuleResources()
			var live []*elasticloadbalancingv2.ListenerRule
			for _, r := range rules {
				if holds(t, params, r.AWSCloudFormationCondition) {
					live = append(live, r)
				}
			}
			if shape == "none" {
				if len(live) != 0 {
					t.Errorf("%d listener rules without sign-in, want none", len(live))
				}
				return
			}
			if len(live) != 1 {
				t.Fatalf("%d listener rules, want the /healthz one", len(live))
			}
			r := live[0]
			if deref(r.ListenerArn) != "ref:HttpsListener" || len(r.Conditions) != 1 || r.Conditions[0].PathPatternConfig == nil ||
				!cmp.Equal([]string{"/healthz"}, r.Conditions[0].PathPatternConfig.Values) {
				t.Errorf("rule %+v does not match /healthz on the HTTPS listener", r)
			}
			if len(r.Actions) != 1 || r.Actions[0].Type != "forward" || deref(r.Actions[0].TargetGroupArn) != "ref:RedeemerTargetGroup" {
				t.Errorf("/healthz rule actions %+v, want one forward to the redeemer, no sign-in", r.Actions)
			}
		})
	}
}

// The redeemer runs with alb and the load balancer's ARN exactly when the
// listener signs users in, and the redeemer reads every variable set.
func TestSignInRedeemerEnvironment(t *testing.T) {
	bins := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reads, err := EnvVars(ctx, bins["redeemer"])
	if err != nil {
		t.Fatal(err)
	}
	for shape, params := range signInShapes {
		t.Run(shape, func(t *testing.T) {
			env := containerOf(t, shapeTemplate(t, params), "RedeemerTaskDefinition").env(t)
			got := map[string]string{}
			for _, name := range []string{"APPROVALS_IDENTITY", "APPROVALS_ALB_ARN", "APPROVALS_ALB_KEYS_URL"} {
				if v, ok := env[name]; ok {
					got[name] = v
					if _, read := reads[name]; !read {
						t.Errorf("the template sets %s, which the redeemer does not read", name)
					}
				}
			}
			want := map[string]string{"APPROVALS_IDENTITY": "link"}
			if shape != "none" {
				// Ref of an application load balancer is its ARN; the
				// default keys URL is the stack's region's.
				want = map[string]string{"APPROVALS_IDENTITY": "alb", "APPROVALS_ALB_ARN": "ref:LoadBalancer"}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("redeemer sign-in variables (-want +got):\n%s", diff)
			}
			for name, v := range env {
				if strings.Contains(v, "secretsmanager") || strings.Contains(v, oidcSecretArn) {
					t.Errorf("the redeemer gets the client secret in %s", name)
				}
			}
		})
	}
}

// The client secret is read by CloudFormation, for the listener: no role of
// the stack may read it, and the task roles are the same with and without
// sign-in.
func TestSignInSecretIAM(t *testing.T) {
	base := shapeTemplate(t, nil)
	for shape, params := range signInShapes {
		t.Run(shape, func(t *testing.T) {
			tpl := shapeTemplate(t, params)
			for name := range tpl.GetAllIAMRoleResources() {
				for _, res := range roleResources(tpl, name, "secretsmanager:GetSecretValue") {
					if res == oidcSecretArn || res == "*" || strings.Contains(res, "secret:approvals-oidc") {
						t.Errorf("%s may read %s", name, res)
					}
				}
				if diff := cmp.Diff(roleActions(t, base, name), roleActions(t, tpl, name)); diff != "" {
					t.Errorf("%s actions change with sign-in (-without +with):\n%s", name, diff)
				}
			}
			ls, _ := tpl.GetElasticLoadBalancingV2ListenerWithName("HttpsListener")
			for _, a := range ls.DefaultActions {
				if c := a.AuthenticateOidcConfig; c != nil && !strings.HasPrefix(deref(c.ClientSecret), "{{resolve:secretsmanager:") {
					t.Errorf("the client secret is not a Secrets Manager reference: %q", deref(c.ClientSecret))
				}
			}
		})
	}
}

// The load balancer calls the provider's token and user-info endpoints
// itself: with sign-in, and only then, it may leave on 443.
func TestSignInLoadBalancerEgress(t *testing.T) {
	for shape, params := range signInShapes {
		t.Run(shape, func(t *testing.T) {
			tpl := shapeTemplate(t, params)
			var got []string
			for name, e := range tpl.GetAllEC2SecurityGroupEgressResources() {
				if !holds(t, params, e.AWSCloudFormationCondition) {
					continue
				}
				got = append(got, name+" "+e.GroupId+" "+deref(e.CidrIp)+" "+e.IpProtocol)
				if derefInt(e.FromPort) != 443 || derefInt(e.ToPort) != 443 {
					t.Errorf("%s opens %d-%d, want 443", name, derefInt(e.FromPort), derefInt(e.ToPort))
				}
			}
			var want []string
			if shape != "none" {
				want = []string{"LoadBalancerToIdentityProvider ref:LoadBalancerSecurityGroup 0.0.0.0/0 tcp"}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("extra egress (-want +got):\n%s", diff)
			}
		})
	}
}

// The template's Rules refuse both providers at once and a provider with a
// part missing, before CloudFormation creates anything.
func TestSignInRules(t *testing.T) {
	both := maps.Clone(signInShapes["oidc"])
	maps.Copy(both, signInShapes["cognito"])
	noSecret := maps.Clone(signInShapes["oidc"])
	noSecret["OidcClientSecretArn"] = ""
	noDomain := maps.Clone(signInShapes["cognito"])
	noDomain["CognitoUserPoolDomain"] = ""
	tests := map[string]struct {
		params map[string]any
		want   []string
	}{
		"none":             {signInShapes["none"], nil},
		"oidc":             {signInShapes["oidc"], nil},
		"cognito":          {signInShapes["cognito"], nil},
		"both":             {both, []string{"OneSignIn"}},
		"oidc, secret?":    {noSecret, []string{"OidcComplete"}},
		"cognito, domain?": {noDomain, []string{"CognitoComplete"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, failedRules(t, withParams(tt.params))); diff != "" {
				t.Errorf("failed rules (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
