/**
 * The layering, checked in `npm test` (test/house.test.ts) and by hand with `npx depcruise lib models
 * endpoint pipeline scaling web service deploy tools scripts`. Floors, bottom up (docs/architecture.md):
 *
 *   lib        the ground floor: errors, logger, config, stats, AWS clients and error names
 *   models     classifiers, their formats and conversion           (lib)
 *   endpoint   the embedded SQS + S3 endpoint                       (lib)
 *   pipeline   contract/ · submit/ (web side) · worker/ (app tier)  (lib, models, endpoint)
 *   scaling    the controller, its policy, the AWS scaling setup    (lib)
 *   web        Koa: routes, uploads, page, OpenAPI                  (lib, models, pipeline, scaling)
 *   service    the composition root                                 (all of the above)
 *   deploy     the AWS stack                                        (lib, models, scaling)
 *   tools      workload generator, bench, simulator                 (anything but tests)
 *   scripts    npm scripts' entry points                            (anything but tests)
 *
 * Nothing but scripts and tests imports tools/; nothing imports a floor above its own; no cycles.
 */
const floor = (name, from, allowed, comment) => ({
  name,
  severity: 'error',
  comment,
  from: { path: from },
  to: { path: '^(lib|models|endpoint|pipeline|scaling|web|service|deploy|tools|scripts|test)/', pathNot: allowed },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Files that import each other in a loop.',
      from: {},
      to: { circular: true },
    },
    floor('lib-is-the-ground-floor', '^lib/', '^lib/', 'lib/ imports nothing of the project but lib/.'),
    floor('models-stand-on-lib', '^models/', '^(lib|models)/', 'models/ imports only lib/ and itself.'),
    floor(
      'endpoint-stands-on-lib',
      '^endpoint/',
      '^(lib|endpoint)/',
      'The embedded endpoint imports only lib/ and itself.',
    ),
    floor(
      'pipeline-below-web',
      '^pipeline/',
      '^(lib|models|endpoint|pipeline)/',
      'pipeline/ imports lib/, models/, endpoint/ and itself.',
    ),
    floor(
      'scaling-stands-on-lib',
      '^scaling/',
      '^(lib|scaling)/',
      'scaling/ knows queues and groups, not the pipeline: lib/ and itself.',
    ),
    floor(
      'web-is-koa-only',
      '^web/',
      '^(lib|models|pipeline|scaling|web)/',
      'web/ translates HTTP to the pipeline; it does not assemble the service.',
    ),
    floor(
      'service-composes',
      '^service/',
      '^(lib|models|endpoint|pipeline|scaling|web|service)/',
      'The composition root uses everything but tools/ and deploy/.',
    ),
    floor(
      'deploy-stands-apart',
      '^deploy/',
      '^(lib|models|scaling|deploy)/',
      'The stack is built from lib/, models/ and scaling/ (IAM, scaling requests).',
    ),
    floor(
      'tools-are-not-production',
      '^(tools|scripts)/',
      '^(lib|models|endpoint|pipeline|scaling|web|service|deploy|tools|scripts)/',
      'Tools and scripts may use anything but tests.',
    ),
    {
      name: 'contract-is-shared',
      severity: 'error',
      comment: 'pipeline/contract/ is what both sides agree on: it imports neither side.',
      from: { path: '^pipeline/contract/' },
      to: { path: '^pipeline/(submit|worker)/' },
    },
    {
      name: 'submit-and-worker-apart',
      severity: 'error',
      comment: 'The web side and the app tier meet only through the contract and the store.',
      from: { path: '^pipeline/submit/' },
      to: { path: '^pipeline/worker/' },
    },
    {
      name: 'worker-and-submit-apart',
      severity: 'error',
      comment: 'The web side and the app tier meet only through the contract and the store.',
      from: { path: '^pipeline/worker/' },
      to: { path: '^pipeline/submit/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|web/public)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
