import * as cdk from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** What a click on an action's link does (README, "Approval requests"). */
export enum ActionType {
  /** SendTaskSuccess with the action's output and the decision. */
  SUCCESS = 'success',
  /** SendTaskFailure with the action's error; the cause carries the decision. */
  FAILURE = 'failure',
  /** SendTaskHeartbeat; the task needs a heartbeat timeout. */
  HEARTBEAT = 'heartbeat',
}

export interface ApprovalAction {
  /** 1 to 32 of a-z 0-9 - _; recorded as decision.action. */
  readonly name: string;
  /** The button's text. @default the name */
  readonly label?: string;
  readonly type: ActionType;
  /** SUCCESS only: the task's output, beside the decision. */
  readonly output?: { [key: string]: unknown };
  /** FAILURE only, required there: the error the state machine catches. */
  readonly error?: string;
  /** FAILURE only. */
  readonly cause?: string;
}

/**
 * An approval request. Each value is written as given, or is a path
 * (sfn.JsonPath.stringAt('$.subject'), listAt, objectAt, numberAt) in a
 * JSONPath state, or a '{% ... %}' expression in a JSONata one.
 */
export interface ApprovalRequestProps
  extends Omit<sfn.TaskStateBaseProps, 'integrationPattern' | 'taskTimeout' | 'timeout' | 'heartbeat' | 'heartbeatTimeout'> {
  /** The request queue (ApprovalsService.queue, or Queue.fromQueueArn on the stack's QueueArn export). */
  readonly queue: sqs.IQueue;
  /** Approvers: each gets their own email and links. A list, or a path or expression that gives one. */
  readonly to?: string[] | string;
  readonly cc?: string[] | string;
  readonly subject: string;
  /** Shown in the email: an object, or a path or expression that gives one. @default {} */
  readonly data?: { [key: string]: unknown } | cdk.IResolvable | string;
  /** @default approve (SUCCESS) and reject (FAILURE, error Rejected) */
  readonly actions?: ApprovalAction[];
  /** Distinct approvers who must choose a SUCCESS action (Version 2). @default 1 */
  readonly minApprovals?: number | string;
  /** The requester's address: gets no links and cannot decide (Version 2). */
  readonly requestedBy?: string;
  /** Names from the worker's APPROVALS_CHANNELS (Slack, Teams, webhooks; Version 2). */
  readonly channels?: string[] | string;
  /**
   * How long the links work. The task times out at the same moment, so an
   * unanswered request ends as States.Timeout.
   *
   * @default Duration.hours(72)
   */
  readonly expiresIn?: cdk.Duration;
  /** An email template name. @default approval */
  readonly template?: string;
  /** Where the redeemer sends the approver after deciding. */
  readonly redirectUrl?: string;
  /** A heartbeat timeout, for HEARTBEAT actions. */
  readonly heartbeatTimeout?: sfn.Timeout;
}

/**
 * An approval step: an SQS sendMessage.waitForTaskToken task whose message
 * is an sfn-approvals request carrying the task token. The state machine's
 * role is granted sqs:SendMessage on the queue (and nothing else).
 */
export class ApprovalRequest extends tasks.SqsSendMessage {
  /** The same step in a JSONata state. */
  public static jsonataRequest(scope: Construct, id: string, props: Omit<ApprovalRequestProps, 'queryLanguage'>): ApprovalRequest {
    return new ApprovalRequest(scope, id, { ...props, queryLanguage: sfn.QueryLanguage.JSONATA });
  }

  /** The message body ApprovalRequest sends, for tests and for other integrations. */
  public static messageBody(props: ApprovalRequestProps): { [key: string]: unknown } {
    const jsonata = props.queryLanguage === sfn.QueryLanguage.JSONATA;
    const body: { [key: string]: unknown } = {
      taskToken: jsonata ? '{% $states.context.Task.Token %}' : sfn.JsonPath.taskToken,
      to: props.to,
      cc: props.cc,
      subject: props.subject,
      template: props.template,
      data: props.data,
      actions: props.actions?.map(renderAction),
      minApprovals: props.minApprovals,
      requestedBy: props.requestedBy,
      channels: props.channels,
      expiresIn: goDuration(props.expiresIn ?? cdk.Duration.hours(72)),
      redirectUrl: props.redirectUrl,
    };
    // The worker refuses unknown fields, not missing ones: leave unset ones out.
    for (const k of Object.keys(body)) {
      if (body[k] === undefined) {
        delete body[k];
      }
    }
    return body;
  }

  constructor(scope: Construct, id: string, props: ApprovalRequestProps) {
    if (props.to === undefined && props.channels === undefined) {
      throw new Error(`ApprovalRequest ${id}: give to, channels, or both`);
    }
    const expiresIn = props.expiresIn ?? cdk.Duration.hours(72);
    super(scope, id, {
      ...props,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      taskTimeout: sfn.Timeout.duration(expiresIn),
      heartbeatTimeout: props.heartbeatTimeout,
      messageBody: sfn.TaskInput.fromObject(ApprovalRequest.messageBody({ ...props, expiresIn })),
    });
  }
}

function renderAction(a: ApprovalAction): { [key: string]: unknown } {
  if (a.type === ActionType.FAILURE && !a.error) {
    throw new Error(`action ${a.name}: a failure action needs an error`);
  }
  if (a.type !== ActionType.FAILURE && (a.error !== undefined || a.cause !== undefined)) {
    throw new Error(`action ${a.name}: error and cause are for failure actions`);
  }
  if (a.type !== ActionType.SUCCESS && a.output !== undefined) {
    throw new Error(`action ${a.name}: output is for success actions`);
  }
  const out: { [key: string]: unknown } = { name: a.name, label: a.label, type: a.type, output: a.output, error: a.error, cause: a.cause };
  for (const k of Object.keys(out)) {
    if (out[k] === undefined) {
      delete out[k];
    }
  }
  return out;
}

/**
 * A Go duration in the largest whole unit ("72h", "90m", "45s"), as the
 * worker's expiresIn reads it.
 */
export function goDuration(d: cdk.Duration): string {
  if (d.isUnresolved()) {
    throw new Error('expiresIn must be a fixed duration: the task timeout is computed from it');
  }
  const s = d.toSeconds();
  if (s <= 0 || !Number.isInteger(s)) {
    throw new Error(`expiresIn ${d}: want a positive whole number of seconds`);
  }
  if (s % 3600 === 0) {
    return `${s / 3600}h`;
  }
  if (s % 60 === 0) {
    return `${s / 60}m`;
  }
  return `${s}s`;
}
