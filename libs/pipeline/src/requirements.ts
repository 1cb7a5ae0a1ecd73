/**
 * Which graphs a request's settings need: checked once, when the settings are resolved
 * (settings.ts), so a pack that cannot serve a request refuses it at submit, naming the field.
 */
import { PipelineError } from './errors.ts';
import { refMaskGraph, type GraphName } from './pack/contract.ts';
import type { PackManifest } from './pack/schema.ts';
import type { ResolvedSettings } from './settings-schema.ts';

type PackGraphs = Pick<PackManifest, 'id' | 'version' | 'graphs'> & { inputs?: Pick<PackManifest['inputs'], 'refMaskNetwork'> };

export interface GraphNeed {
  graph: GraphName;
  why: string;
  field: string;
}

/** The graphs these settings need that the pack does not have. */
export function missingGraphs(manifest: PackGraphs, s: ResolvedSettings): GraphNeed[] {
  const need: GraphNeed[] = [];
  const add = (graphs: GraphName[], why: string, field: string) => graphs.forEach((graph) => need.push({ graph, why, field }));
  if (s.styleEnhance) add(['vae_encoder', 'style_encoder'], `mode ${s.mode} (style enhance)`, 'settings.mode');
  const packNetwork = manifest.inputs?.refMaskNetwork ?? 'rmbg';
  const network = s.referenceMaskExtractor ?? packNetwork;
  const mask = refMaskGraph(network, packNetwork);
  // Another network than the pack's ref_mask: the request chose it, so the refusal names that.
  const maskField = (field: string) => (mask === 'ref_mask' ? field : 'settings.referenceMaskExtractor');
  const maskWhy = (why: string) => (mask === 'ref_mask' ? why : `referenceMaskExtractor ${network} (for ${why})`);
  if (s.bgEnhance) add(['vae_encoder', 'bg_encoder'], `mode ${s.mode} (BG enhance)`, 'settings.mode');
  if (s.bgEnhance) add([mask], maskWhy(`mode ${s.mode} (BG enhance)`), maskField('settings.mode'));
  if (s.fgEnhance) add([mask], maskWhy('fgEnhance'), maskField('settings.fgEnhance'));
  if (s.removeBackground) add([mask], maskWhy('removeBackground'), maskField('settings.removeBackground'));
  if (s.injection) add(['unet_inject', 'vae_encoder'], 'attention injection', 'settings.injection');
  if (s.preprocessor === 'extract') add([s.lineExtractor], `preprocessor extract with ${s.lineExtractor}`, 'settings.lineExtractor');
  return need.filter((n) => !(n.graph in manifest.graphs));
}

/** Throws GRAPH_MISSING naming the field when the pack cannot serve these settings. */
export function checkPackServes(manifest: PackGraphs, s: ResolvedSettings): void {
  const missing = missingGraphs(manifest, s);
  if (!missing.length) return;
  const first = missing[0]!;
  const graphs = [...new Set(missing.filter((m) => m.field === first.field).map((m) => m.graph))].join(', ');
  throw new PipelineError(
    'GRAPH_MISSING',
    `${first.why} needs graph(s) ${graphs}, which pack ${manifest.id}@${manifest.version} does not have`,
    first.field,
  );
}
