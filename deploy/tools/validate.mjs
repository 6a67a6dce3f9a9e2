#!/usr/bin/env node
// Offline validators for deploy/, run by scripts/deploy_check.sh:
//
//   node deploy/tools/validate.mjs crds RENDERED.yaml     custom resources of the rendered kustomization
//   node deploy/tools/validate.mjs dashboard DASHBOARD.json
//
// Custom resources (ServiceMonitor, PrometheusRule, ScaledObject) pass two checks: the validator that
// kubernetes-models generated from the CRD's OpenAPI schema (types, enums, patterns, required fields), and
// the shape of the model's TypeScript type with no undeclared property (see shapes.ts). Core kinds are
// left to kubernetes-validate; any other kind is an error, so a new resource gets a validator too.
//
// The dashboard is checked against Grafana's dashboard type from @grafana/schema, and each panel's
// `options` and `fieldConfig.defaults.custom` against the types of its panel plugin.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

import Ajv from "ajv";
import { parseAllDocuments } from "yaml";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const here = dirname(fileURLToPath(import.meta.url));
// Generated schemas are cached per version of shapes.ts and of the installed packages: building the
// TypeScript program takes seconds, reading the cache milliseconds.
const cacheDir = process.env.DEPLOY_SCHEMA_CACHE ?? join(here, "..", "..", ".deploy-tools", "schemas");
const cacheKey = createHash("sha256")
  .update(["shapes.ts", "tsconfig.json", "package-lock.json"].map((f) => readFileSync(join(here, f))).join("\0"))
  .digest("hex")
  .slice(0, 16);
const tsj = createRequire(import.meta.url)("ts-json-schema-generator");

// apiVersion/kind -> [kubernetes-models class, shape in shapes.ts]
const CUSTOM = {
  "keda.sh/v1alpha1/ScaledObject": [ScaledObject, "ScaledObjectShape"],
  "monitoring.coreos.com/v1/PrometheusRule": [PrometheusRule, "PrometheusRuleShape"],
  "monitoring.coreos.com/v1/ServiceMonitor": [ServiceMonitor, "ServiceMonitorShape"],
};
// Validated by kubernetes-validate --strict.
const CORE = new Set([
  "v1/ConfigMap",
  "v1/Secret",
  "v1/Service",
  "v1/ServiceAccount",
  "apps/v1/Deployment",
  "policy/v1/PodDisruptionBudget",
  "networking.k8s.io/v1/NetworkPolicy",
]);
// Panel plugin -> shapes for its options and its fieldConfig.defaults.custom (null: none declared).
const PANELS = {
  timeseries: ["TimeSeriesOptionsShape", "TimeSeriesFieldConfigShape"],
  stat: ["StatOptionsShape", null],
};

let generator;
const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map();

function schema(name) {
  const cached = join(cacheDir, `${cacheKey}-${name}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, "utf8"));
  generator ??= tsj.createGenerator({
    path: join(here, "shapes.ts"),
    tsconfig: join(here, "tsconfig.json"),
    skipTypeCheck: true,
    additionalProperties: false,
    jsDoc: "none",
  });
  const generated = generator.createSchema(name);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(cached, JSON.stringify(generated));
  return generated;
}

function shape(name) {
  if (!compiled.has(name)) compiled.set(name, ajv.compile(schema(name)));
  return compiled.get(name);
}

function shapeErrors(name, data, where) {
  const check = shape(name);
  if (check(data)) return [];
  return check.errors.map((e) => {
    const extra = e.keyword === "additionalProperties" ? ` '${e.params.additionalProperty}'` : "";
    return `${where}${e.instancePath}: ${e.message}${extra}`;
  });
}

function validateCustomResources(path) {
  const problems = [];
  let checked = 0;
  for (const doc of parseAllDocuments(readFileSync(path, "utf8"))) {
    if (doc.errors.length) {
      problems.push(...doc.errors.map((e) => `${path}: ${e.message}`));
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const key = `${obj.apiVersion}/${obj.kind}`;
    const where = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
    if (CORE.has(key)) continue;
    const entry = CUSTOM[key];
    if (!entry) {
      problems.push(`${where}: no validator for ${key}; add it to deploy/tools/validate.mjs`);
      continue;
    }
    const [Model, shapeName] = entry;
    const found = shapeErrors(shapeName, obj, where);
    try {
      new Model(obj).validate();
    } catch (err) {
      found.push(`${where}: CRD schema: ${err.message}`);
    }
    problems.push(...found);
    checked += 1;
    if (!found.length) console.log(`ok   ${where} (${key})`);
  }
  if (!checked) problems.push(`${path}: no custom resources found`);
  return problems;
}

function validateDashboard(path) {
  const dashboard = JSON.parse(readFileSync(path, "utf8"));
  const problems = shapeErrors("DashboardShape", dashboard, "dashboard");
  const panels = (dashboard.panels ?? []).flatMap((p) => (p.type === "row" ? [p, ...(p.panels ?? [])] : [p]));
  for (const panel of panels) {
    if (panel.type === "row") continue;
    const where = `panel ${panel.id} "${panel.title}"`;
    const shapes = PANELS[panel.type];
    if (!shapes) {
      problems.push(`${where}: no schema for panel type '${panel.type}'; add it to deploy/tools/shapes.ts`);
      continue;
    }
    const [optionsShape, customShape] = shapes;
    problems.push(...shapeErrors(optionsShape, panel.options ?? {}, `${where} options`));
    const custom = panel.fieldConfig?.defaults?.custom;
    if (custom !== undefined) {
      if (customShape) problems.push(...shapeErrors(customShape, custom, `${where} fieldConfig.defaults.custom`));
      else problems.push(`${where}: panel type '${panel.type}' has no fieldConfig.defaults.custom`);
    }
  }
  if (!problems.length) console.log(`ok   ${path}: dashboard and ${panels.length} panels match @grafana/schema`);
  return problems;
}

const [what, path] = process.argv.slice(2);
const run = { crds: validateCustomResources, dashboard: validateDashboard }[what];
if (!run || !path) {
  console.error("usage: node validate.mjs crds RENDERED.yaml | dashboard DASHBOARD.json");
  process.exit(2);
}
const problems = run(path);
for (const p of problems) console.error(`FAIL ${p}`);
process.exit(problems.length ? 1 : 0);
