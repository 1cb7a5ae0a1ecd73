/**
 * Whether the pack can serve a request's settings, checked at submit so a shot that needs a
 * graph the pack lacks is refused with 400 instead of failing later at prepare. Mirrors
 * `requiredGraphs` of @celfarm/pipeline's colorize module, which cannot be imported here
 * without loading the ONNX runtime.
 */
import { PipelineError } from '@celfarm/pipeline/errors';
import type { GraphName } from '@celfarm/pipeline/pack/contract';
import type { PackManifest } from '@celfarm/pipeline/pack/schema';
import type { Settings } from '@celfarm/pipeline/settings';

export function checkPackServes(pack: PackManifest, s: Settings): void {
  const need: { graphs: GraphName[]; why: string; field: string }[] = [];
  if (s.styleEnhance) need.push({ graphs: ['vae_encoder', 'style_encoder'], why: `mode ${s.mode} (style enhance)`, field: 'settings.mode' });
  if (s.bgEnhance) need.push({ graphs: ['vae_encoder', 'bg_encoder', 'ref_mask'], why: `mode ${s.mode} (BG enhance)`, field: 'settings.mode' });
  if (s.fgEnhance) need.push({ graphs: ['ref_mask'], why: 'fgEnhance', field: 'settings.fgEnhance' });
  if (s.removeBackground) need.push({ graphs: ['ref_mask'], why: 'removeBackground', field: 'settings.removeBackground' });
  if (s.preprocessor === 'extract') need.push({ graphs: [s.lineExtractor], why: `preprocessor extract with ${s.lineExtractor}`, field: 'settings.lineExtractor' });
  for (const n of need) {
    const missing = n.graphs.filter((g) => !(g in pack.graphs));
    if (missing.length) {
      throw new PipelineError('GRAPH_MISSING', `${n.why} needs graph(s) ${missing.join(', ')}, which pack ${pack.id}@${pack.version} does not have`, n.field);
    }
  }
}
