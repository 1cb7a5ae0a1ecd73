/** /v1/shots: HTTP in, ShotsService out. */
import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiHeader, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ZodValidationPipe } from 'nestjs-zod';
import type { Config } from '@celfarm/config';
import {
  FRAME_PAGE_LIMIT,
  FRAME_STATES,
  SHOT_STATES,
  frameQuerySchema,
  idempotencyKeySchema,
  rerenderFramesRequestSchema,
  rerenderRequestSchema,
  listQuerySchema,
  type FramePage,
  type FrameQuery,
  type FrameView,
  type ListQuery,
  type RerenderRequest,
  type ShotList,
  type ShotView,
} from '@celfarm/contract';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.ts';
import { ErrorDto, badRequest } from '../core/api-error.ts';
import { LIMITS } from '../core/limits.ts';
import { CONFIG } from '../core/tokens.ts';
import { readShotForm } from './inputs.ts';
import { parseFrame } from './shot-files.ts';
import { ShotsService } from './shots.service.ts';
import { FramePageDto, FrameViewDto, RerenderFramesRequestDto, RerenderRequestDto, ShotListDto, ShotViewDto, SubmitShotDto, SubmitViewDto } from './shots.dto.ts';

const SUBMIT_DOC = `Three input styles, all with \`settings\`, \`priority\` and optional \`project\` (the key's own; default),
\`failedFrameShare\`, \`name\` and \`externalIds\` (\`{show, sequence, shot}\`, the studio's own ids; searchable with
\`GET /v1/shots?q=\`). Each frame keeps its file name — the multipart file name, the last segment of its key, or
\`frames.fileNames[i]\` — and its output is named after it (\`sh010_0001.jpg\` → \`outputs/sh010_0001.png\`); two frames
whose names differ only in case or extension are refused (400 DUPLICATE_FILE_NAME naming both). Without a \`name\`,
the shot is named by its shot code, else its frames' common name (\`sh010_0001.png\` → \`sh010\`), else their folder.

* **multipart/form-data** — a \`request\` field (JSON of project/settings/priority/failedFrameShare/name/externalIds),
  files \`reference\`, optional \`background\`, and one \`frames\` file per frame, in order. Every image is decoded;
  errors name the part and its file (\`frames[2] (sh010_0003.png): …\`; \`frames[2]\` is the third frame, 0-based).
* **application/json, existing objects** — \`reference: {key}\`, \`background?: {key}\`, \`frames: {keys: [...]}\`
  or \`frames: {prefix}\` (every .png/.jpg/.jpeg/.webp under it, sorted). Keys must lie under the project's prefix.
* **application/json, uploads** — \`reference: {upload: true}\`, \`frames: {upload: N}\`: answers 201 with
  \`awaitingUploads: true\` and \`uploads\`: one PUT per input, to a presigned store URL or, when the API takes
  the uploads itself (S3_PRESIGN), to \`/v1/shots/{id}/frames/{n}/input\` and \`/v1/shots/{id}/inputs/reference\`
  with the API key; then call \`POST /v1/shots/{id}/start\`.

A retried submit with the same \`Idempotency-Key\` for the same project answers 200 with the first shot.`;

@ApiTags('shots')
@Controller('v1/shots')
export class ShotsController {
  constructor(
    @Inject(ShotsService) private readonly shots: ShotsService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  @Post()
  @RequireScope('submit')
  @ApiOperation({ summary: 'Submit a shot', description: SUBMIT_DOC })
  @ApiConsumes('application/json', 'multipart/form-data')
  @ApiBody({ type: SubmitShotDto })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Retries with the same key return the first shot.' })
  @ApiResponse({ status: 201, description: 'Created (queued, or awaiting uploads)', type: SubmitViewDto })
  @ApiResponse({ status: 200, description: 'Idempotent replay: the first shot of this key', type: SubmitViewDto })
  @ApiResponse({ status: 400, description: 'Bad input; `error.field` names it', type: ErrorDto })
  @ApiResponse({ status: 403, description: "`project` is not the key's project", type: ErrorDto })
  @ApiResponse({ status: 413, description: 'An image or the upload is too large', type: ErrorDto })
  async submit(
    @CurrentPrincipal() principal: Principal,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
  ): Promise<void> {
    const key = idempotencyKeySchema.safeParse(idempotencyKey);
    if (!key.success) throw badRequest('Idempotency-Key', key.error.issues[0]?.message ?? 'invalid');
    const result = req.isMultipart()
      ? await this.shots.submitForm(
          await readShotForm(req.parts(), {
            fileBytes: LIMITS.fileBytes,
            totalBytes: LIMITS.multipartBytes,
            requestBytes: LIMITS.requestFieldBytes,
            maxFrames: this.config.MAX_FRAMES,
          }),
          principal.project,
          key.data,
        )
      : await this.shots.submitJson(body, principal.project, key.data);
    void reply.status(result.created ? 201 : 200).send(result.view);
  }

  @Get()
  @RequireScope('read')
  @ApiOperation({ summary: "List the key's project's shots, newest first" })
  @ApiQuery({ name: 'state', required: false, enum: SHOT_STATES })
  @ApiQuery({ name: 'project', required: false, type: String, description: "Only the key's own project (another: 403)" })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–500, default 50' })
  @ApiQuery({ name: 'before', required: false, type: String, description: '`next` of the previous page' })
  @ApiQuery({
    name: 'q',
    required: false,
    type: String,
    description:
      'Only shots whose name, studio ids (show, sequence, shot) or id contain this text, case-insensitive (1–100 characters). ' +
      'A search looks at up to 5,000 shots per call, newest first: fewer than `limit` shots with a `next` means it stopped there; pass `next` as `before` to search on.',
  })
  @ApiResponse({ status: 200, type: ShotListDto })
  @ApiResponse({ status: 400, description: 'A bad query parameter; `error.field` names it', type: ErrorDto })
  @ApiResponse({ status: 403, description: "`project` is not the key's project", type: ErrorDto })
  list(@CurrentPrincipal() p: Principal, @Query(new ZodValidationPipe(listQuerySchema)) query: ListQuery): Promise<ShotList> {
    return this.shots.list(query, p.project);
  }

  @Get(':id')
  @RequireScope('read')
  @ApiOperation({
    summary: 'A shot: state, frame counts, progress, ETA and its active frames',
    description: 'Its frames, with the URLs of their images, are paged at `GET /v1/shots/{id}/frames`.',
  })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, type: ShotViewDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project', type: ErrorDto })
  view(@CurrentPrincipal() p: Principal, @Param('id') id: string): Promise<ShotView> {
    return this.shots.view(id, p.project);
  }

  @Get(':id/frames')
  @RequireScope('read')
  @ApiOperation({
    summary: "A page of a shot's frames, with the URLs of their images",
    description:
      'Frames in frame order: state, stage and sampler step, attempts, worker, seed, error, QA scores, and `inputUrl`, `outputUrl`, `previewUrl` ' +
      '(presigned, or paths on this API) for the images that exist. Page on by passing `next` back as `cursor`; `next` is null on the last page.',
  })
  @ApiParam({ name: 'id' })
  @ApiQuery({
    name: 'state',
    required: false,
    isArray: true,
    enum: FRAME_STATES,
    style: 'form',
    explode: false,
    description: 'Only frames in these states: comma-separated (`failed,cancelled`) or repeated',
  })
  @ApiQuery({
    name: 'flagged',
    required: false,
    enum: ['true', 'false'],
    description: '`true`: only frames shot QA flagged for review (a score past its threshold, see `qa.flagged`); `false`: only the others',
  })
  @ApiQuery({
    name: 'review',
    required: false,
    enum: ['needed', 'approved'],
    description: '`needed`: frames flagged by shot QA and not approved yet (`needsReview`); `approved`: frames approved as they are',
  })
  @ApiQuery({ name: 'cursor', required: false, type: String, description: '`next` of the previous page' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: `1–${FRAME_PAGE_LIMIT.max}, default ${FRAME_PAGE_LIMIT.default}` })
  @ApiResponse({ status: 200, type: FramePageDto })
  @ApiResponse({ status: 400, description: 'A bad query parameter; `error.field` names it', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project', type: ErrorDto })
  frames(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Query(new ZodValidationPipe(frameQuerySchema)) query: FrameQuery): Promise<FramePage> {
    return this.shots.frames(id, p.project, query);
  }

  @Get(':id/frames/:frame')
  @RequireScope('read')
  @ApiOperation({
    summary: 'One frame of a shot, as its pages list it',
    description: 'State, stage and step, attempts, worker, seed, error, QA scores, review, earlier takes and the URLs of its images.',
  })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'frame', description: '1-based' })
  @ApiResponse({ status: 200, type: FrameViewDto })
  @ApiResponse({ status: 400, description: 'Not a frame number', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project, or no such frame', type: ErrorDto })
  frame(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('frame') frame: string): Promise<FrameView> {
    return this.shots.frame(id, p.project, parseFrame(frame));
  }

  @Post(':id/start')
  @RequireScope('submit')
  @HttpCode(200)
  @ApiOperation({ summary: 'Start a shot whose inputs were uploaded (to its `uploads` URLs)' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, type: ShotViewDto })
  @ApiResponse({ status: 400, description: 'An upload is missing or not an image', type: ErrorDto })
  @ApiResponse({ status: 404, type: ErrorDto })
  @ApiResponse({ status: 409, description: 'The shot does not await uploads', type: ErrorDto })
  start(@CurrentPrincipal() p: Principal, @Param('id') id: string): Promise<ShotView> {
    return this.shots.start(id, p.project);
  }

  @Post(':id/cancel')
  @RequireScope('submit')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a shot (idempotent); active frames stop at their next step' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, type: ShotViewDto })
  @ApiResponse({ status: 404, type: ErrorDto })
  @ApiResponse({ status: 409, description: 'Already completed or failed', type: ErrorDto })
  cancel(@CurrentPrincipal() p: Principal, @Param('id') id: string): Promise<ShotView> {
    return this.shots.cancel(id, p.project);
  }

  @Post(':id/retry')
  @RequireScope('submit')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Retry the failed frames of a finished shot',
    description: 'Frames that failed on bad input (`error.permanent`) would fail the same way and are not retried; `retryableFrames` in the shot view counts the others.',
  })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 200, type: ShotViewDto })
  @ApiResponse({ status: 404, type: ErrorDto })
  @ApiResponse({
    status: 409,
    description: 'NOTHING_TO_RETRY (no failed frames), STATE_CONFLICT (not finished), or NOT_RETRYABLE (only failures a retry cannot fix; the message names the frames and causes)',
    type: ErrorDto,
  })
  retry(@CurrentPrincipal() p: Principal, @Param('id') id: string): Promise<ShotView> {
    return this.shots.retry(id, p.project);
  }

  @Post(':id/frames/:frame/approve')
  @RequireScope('submit')
  @HttpCode(200)
  @ApiOperation({
    summary: "Approve a completed frame's take as it is",
    description: 'It no longer needs review (`needsReview` false, `review.state` approved); its scores and flags stay. Idempotent; a re-render clears it.',
  })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'frame', description: '1-based' })
  @ApiResponse({ status: 200, type: FrameViewDto })
  @ApiResponse({ status: 400, description: 'Not a frame number', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project, or no such frame', type: ErrorDto })
  @ApiResponse({ status: 409, description: 'STATE_CONFLICT: the frame is not completed', type: ErrorDto })
  approve(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('frame') frame: string): Promise<FrameView> {
    return this.shots.approve(id, p.project, parseFrame(frame), p.keyId);
  }

  @Post(':id/frames/:frame/rerender')
  @RequireScope('submit')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Render one frame of a finished shot again with another seed',
    description:
      "A new round for that frame: the shot runs again, the frame waits with the new seed (`seed`, default a random one), its current take — output, preview, " +
      'scores, review — moves to `takes` (lineage; its images stay readable at `takes[].outputUrl`), and the next frame\'s flicker is scored again against the new take.',
  })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'frame', description: '1-based' })
  @ApiBody({ type: RerenderRequestDto, required: false })
  @ApiResponse({ status: 200, type: ShotViewDto })
  @ApiResponse({ status: 400, description: 'A bad frame number or seed; `error.field` names it', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project, or no such frame', type: ErrorDto })
  @ApiResponse({
    status: 409,
    description: 'STATE_CONFLICT (the shot has not finished, or the frame is neither completed nor failed) or NOT_RETRYABLE (the frame failed on bad input)',
    type: ErrorDto,
  })
  rerender(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('frame') frame: string, @Body() body: unknown): Promise<ShotView> {
    // A refusal names its field (`seed`, an unknown key) through the API's error filter.
    const request: RerenderRequest = rerenderRequestSchema.parse(body ?? {});
    return this.shots.rerender(id, p.project, [parseFrame(frame)], request.seed);
  }

  @Post(':id/rerender')
  @RequireScope('submit')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Render several frames of a finished shot again, in one round',
    description:
      'As `POST …/frames/{frame}/rerender` for every listed frame at once (e.g. the frames after one you approved, with `consistency.referenceChain: approved`). ' +
      '`seed`: every listed frame renders with it; absent, each gets a new random one. Every frame is checked before anything changes.',
  })
  @ApiParam({ name: 'id' })
  @ApiBody({ type: RerenderFramesRequestDto })
  @ApiResponse({ status: 200, type: ShotViewDto })
  @ApiResponse({ status: 400, description: 'A bad frame list or seed; `error.field` names it', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project, or no such frame', type: ErrorDto })
  @ApiResponse({ status: 409, description: 'STATE_CONFLICT or NOT_RETRYABLE, as for one frame; the message names the frames', type: ErrorDto })
  rerenderFrames(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Body() body: unknown): Promise<ShotView> {
    const request = rerenderFramesRequestSchema.parse(body ?? {});
    return this.shots.rerender(id, p.project, request.frames, request.seed);
  }

  @Delete(':id')
  @RequireScope('submit')
  @HttpCode(204)
  @ApiOperation({ summary: "Delete a shot: cancel it, then remove its objects and records" })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 204 })
  @ApiResponse({ status: 404, type: ErrorDto })
  async remove(@CurrentPrincipal() p: Principal, @Param('id') id: string): Promise<void> {
    await this.shots.remove(id, p.project);
  }
}
