/**
 * The CDK app (cdk.json runs it through the project's preload): reads the deployment's parameters
 * (deploy/config.ts), the release artifact (npm run deploy:package) and the scaling policy, and
 * defines the stack. `npm run deploy:synth` works offline, with no AWS account. cdk-nag's AwsSolutions
 * pack checks the stack as it is synthesized: a finding not acknowledged with its reason (deploy/nag.ts)
 * stops the synthesis, and so the deployment, with a report naming the resource.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { projectRoot } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { readConfigFile, resolveDeployConfig, stackPolicy } from './config.js';
import { DeployError } from './errors.js';
import { readReleaseManifest } from './release.js';
import { ImageRecognitionStack } from './stack.js';

const log = createLogger('deploy');

try {
  const app = new App();
  const context = app.node.getAllContext();
  const config = resolveDeployConfig({ file: await readConfigFile(context), context, env: process.env });
  const policy = await stackPolicy(config);
  const releaseFile = resolve(projectRoot, config.release);
  if (!existsSync(releaseFile)) {
    throw new DeployError(
      'RELEASE',
      `the release artifact ${releaseFile} does not exist: build it with npm run deploy:package (npm run deploy:synth and npm run deploy do)`,
      { file: releaseFile },
    );
  }
  // The release carries the model (deploy/release-model.ts): it must be the one configured.
  const release = await readReleaseManifest(releaseFile);
  if (release?.model.source !== config.model) {
    throw new DeployError(
      'RELEASE',
      `the release artifact ${releaseFile} was built for model ${release?.model.source ?? '(unknown: no release.json beside it)'}, but the deployment's model is ${config.model}: build it with npm run deploy:package -- --model ${config.model} (or set model in deploy/config.json, which npm run deploy:package reads)`,
      { file: releaseFile, model: config.model, released: release?.model.source ?? null },
    );
  }
  new ImageRecognitionStack(app, config.stackName, {
    config,
    policy,
    releaseFile,
    ...(release.model.manifest === null ? {} : { releaseModel: release.model.manifest }),
    env: { region: config.region, ...(config.account === undefined ? {} : { account: config.account }) },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
} catch (err) {
  log.error('the deployment could not be defined', { error: err });
  process.exitCode = 1;
}
