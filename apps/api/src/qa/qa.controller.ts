/** /v1/qa/thresholds: the shot QA thresholds of the caller's project. */
import { Body, Controller, Get, Inject, Put } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { createZodDto } from 'nestjs-zod';
import type { Config } from '@celfarm/config';
import { qaThresholdsSchema, qaThresholdsViewSchema, type QaThresholdsView } from '@celfarm/contract';
import { resolveQaThresholds, type QaThresholdStore } from '@celfarm/jobs';
import { DEFAULT_THRESHOLDS } from '@celfarm/qa';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.ts';
import { ErrorDto } from '../core/api-error.ts';
import { CONFIG, QA_THRESHOLD_STORE } from '../core/tokens.ts';

class QaThresholdsDto extends createZodDto(qaThresholdsSchema) {}
class QaThresholdsViewDto extends createZodDto(qaThresholdsViewSchema) {}

@ApiTags('qa')
@Controller('v1/qa/thresholds')
export class QaController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(QA_THRESHOLD_STORE) private readonly thresholds: QaThresholdStore,
  ) {}

  @Get()
  @RequireScope('read')
  @ApiOperation({
    summary: "The project's shot QA thresholds",
    description: '`project`: what the project set; `effective`: what a shot submitted now is judged against when its request sets none (project over QA_THRESHOLDS over the defaults).',
  })
  @ApiResponse({ status: 200, type: QaThresholdsViewDto })
  async get(@CurrentPrincipal() p: Principal): Promise<QaThresholdsView> {
    return this.view(await this.thresholds.get(p.project));
  }

  @Put()
  @RequireScope('admin')
  @ApiOperation({
    summary: "Set the project's shot QA thresholds",
    description:
      'Replaces what the project set (`{}` clears it). Shots submitted from now on are judged against them; shots already submitted keep theirs. ' +
      'palette and flickerMean: ΔE00 0–100, flagged above; flickerShare: 0–1, flagged above; lineFidelity: 0–1, flagged below.',
  })
  @ApiBody({ type: QaThresholdsDto })
  @ApiResponse({ status: 200, type: QaThresholdsViewDto })
  @ApiResponse({ status: 400, description: 'An unknown score or a value out of range; `error.field` names it', type: ErrorDto })
  async put(@CurrentPrincipal() p: Principal, @Body() body: unknown): Promise<QaThresholdsView> {
    // A refusal names the score (an unknown one, or a value out of range) through the error filter.
    return this.view(await this.thresholds.set(p.project, qaThresholdsSchema.parse(body ?? {})));
  }

  private view(project: QaThresholdsView['project']): QaThresholdsView {
    return { project, effective: resolveQaThresholds({ ...DEFAULT_THRESHOLDS }, this.config.QA_THRESHOLDS, project) };
  }
}
