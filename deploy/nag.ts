/**
 * cdk-nag (the AwsSolutions pack) on the stack: what a production stack should have is built in
 * (access logs, flow log, Auto Scaling notifications, TLS-only queues, buckets and topics); what it
 * reports that is right for this service is acknowledged where the resource is made, with the reason
 * (`Validations.of(construct).acknowledge`). This file holds the reasons for the instance roles'
 * wildcard resources, keyed by the statement of scaling/aws/iam.ts that has them: a statement with a
 * wildcard resource and no reason here stays a finding, which the test suite (test/deploy-nag.test.ts)
 * and `cdk synth` report.
 */
import { type Stack, Validations } from 'aws-cdk-lib';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
// cdk-nag's own rendering of a resource in its finding ids, so an acknowledgement names exactly its finding.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IamPolicyDocument } from '../scaling/aws/iam.js';

/** Why a statement of the instance roles names a resource with a wildcard, by its Sid. */
export const WILDCARD_REASONS: Readonly<Record<string, string>> = {
  ListResponseQueues:
    'sqs:ListQueues has no resource-level permissions (Service Authorization Reference): "*" is the only resource it takes; the janitor lists only the queues under the prefix.',
  DescribeTheGroups:
    'autoscaling:DescribeAutoScalingGroups cannot be scoped (no resource-level permissions): the controller reads the app tier group and its own web group.',
  PublishResults:
    "The web processes create their response queues at start, each with a unique suffix under the stack's prefix: the wildcard covers those queues and no other.",
  OwnTheResponseQueues:
    "Each web process creates, uses and deletes its own response queue under the stack's prefix (unique suffix), and the janitor deletes dead ones: only queues under that prefix.",
  ReadInputImages: "<bucket>/* is the input bucket's own objects: the uploads, one key per request.",
  WriteResults: "<bucket>/* is the output bucket's own objects: a result per request.",
  StoreUploads: "<bucket>/* is the input bucket's own objects: the uploads, one key per request.",
  ReadResultsRecordDeadLetters: "<bucket>/* is the output bucket's own objects: results and dead-letter records.",
  ReadBatchStatus:
    "<bucket>/batches/* is the output bucket's batch records: a worker reads its batch's status (cancelled or not).",
  AnswerBatches:
    "Each batch gets its answers queue under the stack's batch prefix when it starts (its id as the suffix): the wildcard covers those queues and no other.",
  RunBatches:
    "The web tier creates, reads and deletes one answers queue per batch under the stack's batch prefix: only queues under that prefix.",
  TidyBatchRecords:
    "<bucket>/batches/* and <bucket>/idempotency/* are the output bucket's own batch and idempotency records, removed when done with.",
  ReadSourceObjects:
    '<bucket>/* of each SOURCE_BUCKETS bucket: the objects people ask to be classified where they are, read and never written.',
  SendTheControllerHeartbeat:
    'cloudwatch:PutMetricData has no resource-level permissions ("*" is the only resource it takes); its condition key narrows it to the heartbeat namespace.',
  ReadTheControllerHeartbeat:
    'cloudwatch:GetMetricData has no resource-level permissions: a controller taking over reads the last minutes of the heartbeat back.',
  FollowTheGroupLifecycle:
    'An Auto Scaling group ARN holds an id assigned at creation; the wildcard stands for it and the group name pins the one group.',
  ScaleTheAppTier:
    'An Auto Scaling group ARN holds an id assigned at creation; the wildcard stands for it and the group name pins the one group.',
};

interface Statement {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Resource?: string | readonly string[];
}

/**
 * Acknowledges, on `role`, each AwsSolutions-IAM5 finding that `document` gives rise to with a
 * reason from WILDCARD_REASONS; returns the Sids that have a wildcard resource and no reason.
 */
export function acknowledgeWildcardResources(stack: Stack, role: CfnRole, document: IamPolicyDocument): string[] {
  const reasons = new Map<string, string[]>();
  const unexplained: string[] = [];
  for (const statement of document.Statement as readonly Statement[]) {
    if (statement.Effect !== 'Allow') continue;
    for (const resource of [statement.Resource ?? []].flat()) {
      const rendered = flattenCfnReference(stack.resolve(resource));
      if (!rendered.includes('*')) continue;
      const reason = statement.Sid === undefined ? undefined : WILDCARD_REASONS[statement.Sid];
      if (reason === undefined) {
        unexplained.push(statement.Sid ?? '(no Sid)');
        continue;
      }
      const id = `AwsSolutions-IAM5[Resource::${rendered}]`;
      reasons.set(id, [...(reasons.get(id) ?? []), `${statement.Sid}: ${reason}`]);
    }
  }
  for (const [id, why] of reasons) Validations.of(role).acknowledge({ id, reason: why.join(' ') });
  return unexplained;
}

/** One finding of the pack: its rule (with the finding, e.g. `AwsSolutions-IAM5[Resource::*]`) and where. */
export interface NagFinding {
  readonly rule: string;
  readonly path: string;
  readonly description: string;
}

/** The AwsSolutions pack on `stack`: every finding not acknowledged. */
export function awsSolutionsFindings(stack: Stack): NagFinding[] {
  const report = new AwsSolutionsChecks(stack).validateScope(stack);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => ({
      rule: v.ruleName,
      path: (r as { constructPath?: string }).constructPath ?? r.resourceLogicalId ?? '(unknown)',
      description: v.description,
    })),
  );
}
