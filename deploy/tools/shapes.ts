// The shapes deploy/ must have, as TypeScript types published by the projects that own them:
// the Prometheus Operator and KEDA CRDs (kubernetes-models) and Grafana's dashboard and panel options
// (@grafana/schema). validate.mjs turns each into a JSON Schema with ts-json-schema-generator, where every
// object rejects properties its type does not declare: the API server silently drops unknown fields of a
// custom resource, and Grafana ignores unknown dashboard keys, so a misspelt field would otherwise pass.
import type { IScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import type { IPrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import type { Dashboard } from "@grafana/schema/dist/esm/raw/dashboard/x/Dashboard_types.gen";
import type * as stat from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";
import type * as timeseries from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";

export interface ServiceMonitorShape extends IServiceMonitor {}
export interface PrometheusRuleShape extends IPrometheusRule {}
export interface ScaledObjectShape extends IScaledObject {}

export interface DashboardShape extends Dashboard {}
// Panel `options` and `fieldConfig.defaults.custom`, per panel plugin the dashboard uses.
export interface TimeSeriesOptionsShape extends timeseries.Options {}
export interface TimeSeriesFieldConfigShape extends timeseries.FieldConfig {}
export interface StatOptionsShape extends stat.Options {}
