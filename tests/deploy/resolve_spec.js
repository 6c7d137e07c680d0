#!/usr/bin/env node
// Resolves an s.yaml with Serverless Devs' own parser (@serverless-devs/parse-spec, the
// one `s` bundles) the way `s deploy` does, and prints what each resource's component
// receives as JSON on stdout:
//   {"parser": "<version>", "command": "deploy", "edition": "3.0.0", "vars": {...},
//    "resources": [{"name", "component", "access", "props"}]}
// The credential the parser resolved is left out: it may be real.
//
// Usage: node resolve_spec.js [path/to/s.yaml] [command]
// Credentials come from the environment (AccountID, AccessKeyID, AccessKeySecret: the
// parser's own names for them), so nothing is read from ~/.s and nothing needs the network.
'use strict';

const dns = require('dns');
const net = require('net');
const path = require('path');

// Resolving must be offline; a parser that reached for the network (an STS call to find
// the account id, say) would make the answer depend on where the test runs, and it may
// swallow the error, so every attempt is recorded and fails the run at the end.
const attempts = [];
// Only host and port are named: the options of a connect may carry credentials.
const where = (first, second) => {
  if (typeof first === 'object' && first !== null) {
    return `${first.host || first.hostname || first.path || '?'}:${first.port || ''}`;
  }
  return second === undefined ? String(first) : `${second}:${first}`;
};
const refuse = (what) =>
  function refused(first, second) {
    attempts.push(`${what} ${where(first, second)}`);
    throw new Error(`resolve_spec: network access refused (${what} ${where(first, second)})`);
  };
net.Socket.prototype.connect = refuse('connect');
dns.lookup = refuse('dns.lookup');
dns.resolve = refuse('dns.resolve');
dns.promises.lookup = refuse('dns.promises.lookup');

// Messages for the user go to stderr: stdout is the JSON answer alone.
const say = (...args) => console.error(...args);
const logger = {
  debug: () => {},
  info: say,
  warn: say,
  warnOnce: say,
  tips: say,
  error: say,
  write: say,
  output: say,
};

async function main() {
  const [file = 's.yaml', command = 'deploy'] = process.argv.slice(2);
  const { default: ParseSpec } = require('@serverless-devs/parse-spec');
  const { version } = require('@serverless-devs/parse-spec/package.json');
  const spec = await new ParseSpec(path.resolve(file), { argv: [command], logger }).start();
  const answer = {
    parser: version,
    command: spec.command,
    edition: spec.yaml.content.edition,
    vars: spec.yaml.vars,
    resources: spec.steps.map((step) => ({
      name: step.projectName,
      component: step.component,
      access: step.access,
      props: step.props,
    })),
  };
  if (attempts.length > 0) {
    throw new Error('resolve_spec: resolving s.yaml must not need the network');
  }
  process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    say(error && error.message ? error.message : error);
    if (attempts.length > 0) {
      say(`resolve_spec: the parser tried the network: ${attempts.join('; ')}`);
    }
    process.exit(1);
  },
);
