// AWS CDK constructs for sfn-approvals: the service, and the approval step
// a state machine uses to ask for a decision.
export * from './service';
export * from './request';
