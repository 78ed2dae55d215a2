import * as path from 'path';
import * as cfninc from 'aws-cdk-lib/cloudformation-include';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * The CloudFormation template this construct deploys: the repository's own,
 * resolved from the compiled file (dist/lib/service.js).
 */
export const DEFAULT_TEMPLATE_FILE = path.join(__dirname, '..', '..', '..', 'cloudformation', 'approvals.yml');

export interface ApprovalsServiceProps {
  /** The sfn-approvals image (deploy/Dockerfile), e.g. ACCOUNT.dkr.ecr.REGION.amazonaws.com/sfn-approvals:v1.2.3. */
  readonly imageUri: string;
  readonly vpcId: string;
  /** The VPC's CIDR block: the metrics port accepts connections from it only. */
  readonly vpcCidr: string;
  /** Subnets for the internet-facing load balancer (two or more zones). */
  readonly publicSubnetIds: string[];
  /** Subnets for the tasks, with a route to SQS, SES, Step Functions, Secrets Manager, ECR and CloudWatch Logs. */
  readonly privateSubnetIds: string[];
  /** Public host name of the redeemer: links in emails point to https://domainName. */
  readonly domainName: string;
  /** ACM certificate for domainName, in the stack's region. */
  readonly certificateArn: string;
  /** From address of the emails. */
  readonly senderAddress: string;
  /** The verified SES identity that covers senderAddress (its domain, or the address). */
  readonly senderIdentity: string;
  /**
   * Any other parameter of the template, by its name there (HostedZoneId,
   * ConfigurationSetName, WorkerMaxCount...). Values as CloudFormation takes
   * them. SigningKeys is refused: it would be written into the synthesized
   * template; it stays a NoEcho stack parameter, given at deploy time.
   *
   * @default - the template's defaults
   */
  readonly parameters?: { [name: string]: string | number | string[] };
  /** @default DEFAULT_TEMPLATE_FILE */
  readonly templateFile?: string;
}

/**
 * The whole service (queue and dead-letter queue, keyring secret, worker and
 * redeemer on Fargate, load balancer, autoscaling, alarms, Cloud Map names),
 * from deploy/cloudformation/approvals.yml through CfnInclude: one
 * definition, the one the deploy checks test, whichever tool deploys it.
 */
export class ApprovalsService extends Construct {
  /** The included template; getResource('RequestQueue') and the like reach its resources. */
  public readonly template: cfninc.CfnInclude;
  /** The request queue: give it to ApprovalRequest. */
  public readonly queue: sqs.IQueue;
  public readonly deadLetterQueue: sqs.IQueue;

  constructor(scope: Construct, id: string, props: ApprovalsServiceProps) {
    super(scope, id);
    const extra = props.parameters ?? {};
    if ('SigningKeys' in extra) {
      throw new Error('ApprovalsService: pass SigningKeys at deploy time (cdk deploy --parameters SigningKeys=...), not in the synthesized template');
    }
    this.template = new cfninc.CfnInclude(this, 'Template', {
      templateFile: props.templateFile ?? DEFAULT_TEMPLATE_FILE,
      parameters: {
        ...extra,
        ImageUri: props.imageUri,
        VpcId: props.vpcId,
        VpcCidr: props.vpcCidr,
        PublicSubnetIds: props.publicSubnetIds,
        PrivateSubnetIds: props.privateSubnetIds,
        DomainName: props.domainName,
        CertificateArn: props.certificateArn,
        SenderAddress: props.senderAddress,
        SenderIdentity: props.senderIdentity,
      },
    });
    this.queue = this.importQueue('RequestQueue');
    this.deadLetterQueue = this.importQueue('RequestDeadLetterQueue');
  }

  private importQueue(logicalId: string): sqs.IQueue {
    const q = this.template.getResource(logicalId) as sqs.CfnQueue;
    return sqs.Queue.fromQueueAttributes(this, logicalId, {
      queueArn: q.attrArn,
      queueUrl: q.ref,
      queueName: q.attrQueueName,
    });
  }
}
