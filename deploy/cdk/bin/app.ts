// The example app: the service in one stack, a workflow with an approval step
// in another (in JSONPath, and the same step in JSONata). Both stacks are
// environment-agnostic, so `cdk synth` needs no AWS account. Values come from
// cdk.json's context; override them with -c vpcId=vpc-... and so on.
import * as cdk from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ActionType, ApprovalRequest, ApprovalsService } from '../lib';

const app = new cdk.App();
const ctx = (key: string): string => {
  const v = app.node.tryGetContext(key);
  if (typeof v !== 'string' || v === '') {
    throw new Error(`context ${key} is not set (cdk.json, or -c ${key}=...)`);
  }
  return v;
};

class ApprovalsServiceStack extends cdk.Stack {
  public readonly service: ApprovalsService;

  constructor(scope: Construct, id: string, props?: cdk.StackProps) {
    super(scope, id, props);
    this.service = new ApprovalsService(this, 'Approvals', {
      imageUri: ctx('imageUri'),
      vpcId: ctx('vpcId'),
      vpcCidr: ctx('vpcCidr'),
      publicSubnetIds: ctx('publicSubnetIds').split(','),
      privateSubnetIds: ctx('privateSubnetIds').split(','),
      domainName: ctx('domainName'),
      certificateArn: ctx('certificateArn'),
      senderAddress: ctx('senderAddress'),
      senderIdentity: ctx('senderIdentity'),
    });
  }
}

interface WorkflowStackProps extends cdk.StackProps {
  readonly queue: sqs.IQueue;
}

// The example of deploy/statemachines/approval.asl.json: ask the approvers,
// then tell the requester how it ended. Input: approval.input.json.
class ApprovalWorkflowStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props: WorkflowStackProps) {
    super(scope, id, props);
    const { queue } = props;

    const notify = (id: string, data: { [key: string]: unknown }) =>
      new tasks.SqsSendMessage(this, id, {
        queue,
        messageBody: sfn.TaskInput.fromObject({
          to: sfn.JsonPath.listAt('$.requester'),
          subject: sfn.JsonPath.stringAt('$.subject'),
          template: 'notification',
          data: { request: sfn.JsonPath.objectAt('$.details'), ...data },
        }),
        resultPath: sfn.JsonPath.DISCARD,
      }).addRetry({ errors: ['States.TaskFailed'], interval: cdk.Duration.seconds(2), maxAttempts: 3, backoffRate: 2 });

    const request = new ApprovalRequest(this, 'RequestApproval', {
      queue,
      to: sfn.JsonPath.listAt('$.approvers'),
      subject: sfn.JsonPath.stringAt('$.subject'),
      template: 'approval',
      data: sfn.JsonPath.objectAt('$.details'),
      actions: [
        { name: 'approve', label: 'Approve', type: ActionType.SUCCESS, output: { approved: true } },
        { name: 'reject', label: 'Reject', type: ActionType.FAILURE, error: 'Rejected', cause: 'rejected by the approver' },
      ],
      minApprovals: 1, // one approval decides; more need the votes table (APPROVALS_VOTES_TABLE)
      expiresIn: cdk.Duration.hours(72),
      resultPath: '$.approval',
    });
    request.addCatch(
      notify('NotifyRejected', { outcome: 'rejected', cause: sfn.JsonPath.stringAt('$.rejection.Cause') })
        .next(new sfn.Fail(this, 'Rejected', { error: 'Rejected', cause: 'the approver rejected the request' })),
      { errors: ['Rejected'], resultPath: '$.rejection' },
    );
    request.addCatch(
      notify('NotifyTimedOut', { outcome: 'timed out' })
        .next(new sfn.Fail(this, 'TimedOut', { error: 'Approvals.TimedOut', cause: 'nobody decided before the links expired' })),
      { errors: ['States.Timeout'], resultPath: '$.timeout' },
    );
    request.addCatch(
      new sfn.Fail(this, 'RequestFailed', {
        error: 'Approvals.RequestFailed',
        cause: "the approval request could not be sent; see the RequestApproval state's TaskFailed event for the cause",
      }),
      { errors: ['Approvals.InvalidRequest', 'Approvals.EmailRejected'], resultPath: '$.failure' },
    );
    const definition = request
      .next(notify('NotifyApproved', { outcome: 'approved', decision: sfn.JsonPath.objectAt('$.approval.decision') }))
      .next(new sfn.Succeed(this, 'Approved'));
    new sfn.StateMachine(this, 'ApprovalStateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      stateMachineType: sfn.StateMachineType.STANDARD, // waitForTaskToken needs STANDARD
    });

    // The same step in a JSONata state machine.
    const jsonataRequest = ApprovalRequest.jsonataRequest(this, 'RequestApprovalJsonata', {
      stateName: 'RequestApproval',
      queue,
      to: '{% $states.input.approvers %}',
      subject: '{% $states.input.subject %}',
      data: '{% $states.input.details %}',
      outputs: "{% $merge([$states.input, {'approval': $states.result}]) %}",
    });
    new sfn.StateMachine(this, 'JsonataApprovalStateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(jsonataRequest),
      queryLanguage: sfn.QueryLanguage.JSONATA,
      stateMachineType: sfn.StateMachineType.STANDARD,
    });
  }
}

const service = new ApprovalsServiceStack(app, 'SfnApprovals');
new ApprovalWorkflowStack(app, 'SfnApprovalsExample', { queue: service.service.queue });
app.synth();
