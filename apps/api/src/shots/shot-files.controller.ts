/**
 * A shot's images through the API: read by its project's keys (and the dashboard's session), and
 * its inputs uploaded while it awaits them. Shot views link here instead of to presigned URLs
 * when the object store's signatures are no guard (S3_PRESIGN, core/object-urls.ts). Reads take
 * no token from the key's rate limit: a shot page shows two images per frame.
 */
import { Body, Controller, Get, HttpCode, Inject, Param, Put, Res } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { ApiBody, ApiConsumes, ApiOperation, ApiParam, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { UNMETERED } from '../auth/auth.hooks.ts';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.ts';
import { ApiError, ErrorDto } from '../core/api-error.ts';
import { FRAME_FILE_KINDS, INPUT_NAMES, parseFrame, parseRound, type ShotFile } from './shot-files.ts';
import { ShotsService } from './shots.service.ts';

function parseKind<T extends string>(value: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new ApiError(404, 'NOT_FOUND', `no ${field} ${value}; one of ${allowed.join(', ')}`);
  return value as T;
}

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'];

@ApiTags('shots')
@Controller('v1/shots')
export class ShotFilesController {
  constructor(@Inject(ShotsService) private readonly shots: ShotsService) {}

  @Get(':id/frames/:frame/:file')
  @RequireScope('read')
  @RouteConfig(UNMETERED)
  @ApiOperation({
    summary: "A frame's sketch input, colour output or WebP preview",
    description: 'What `inputUrl`, `outputUrl` and `previewUrl` of the shot view link to when the API serves the images. Outputs and previews exist once the frame has completed.',
  })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'frame', description: '1-based' })
  @ApiParam({ name: 'file', enum: FRAME_FILE_KINDS })
  @ApiProduces(...IMAGE_TYPES)
  @ApiResponse({ status: 200, description: 'The image' })
  @ApiResponse({ status: 400, description: 'Not a frame number', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project, or no such image (yet)', type: ErrorDto })
  async frameFile(
    @CurrentPrincipal() p: Principal,
    @Param('id') id: string,
    @Param('frame') frame: string,
    @Param('file') file: string,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const kind = parseKind(file, FRAME_FILE_KINDS, 'frame file');
    await this.send(reply, p, id, { kind, frame: parseFrame(frame) });
  }

  @Get(':id/frames/:frame/takes/:round/:file')
  @RequireScope('read')
  @RouteConfig(UNMETERED)
  @ApiOperation({
    summary: "An earlier take's colour output or WebP preview",
    description: 'What `takes[].outputUrl` and `takes[].previewUrl` of a frame link to when the API serves the images: the take a re-render with another seed replaced.',
  })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'frame', description: '1-based' })
  @ApiParam({ name: 'round', description: 'The retry round that rendered the take (`takes[].round`)' })
  @ApiParam({ name: 'file', enum: ['output', 'preview'] })
  @ApiProduces(...IMAGE_TYPES)
  @ApiResponse({ status: 200, description: 'The image' })
  @ApiResponse({ status: 400, description: 'Not a frame or round number', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project, or no such take', type: ErrorDto })
  async takeFile(
    @CurrentPrincipal() p: Principal,
    @Param('id') id: string,
    @Param('frame') frame: string,
    @Param('round') round: string,
    @Param('file') file: string,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const kind = parseKind(file, ['output', 'preview'] as const, 'take file');
    await this.send(reply, p, id, { kind: kind === 'output' ? 'take-output' : 'take-preview', frame: parseFrame(frame), round: parseRound(round) });
  }

  @Get(':id/inputs/:name')
  @RequireScope('read')
  @RouteConfig(UNMETERED)
  @ApiOperation({ summary: "The shot's colour reference or background image" })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'name', enum: INPUT_NAMES })
  @ApiProduces(...IMAGE_TYPES)
  @ApiResponse({ status: 200, description: 'The image' })
  @ApiResponse({ status: 404, type: ErrorDto })
  async input(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('name') name: string, @Res() reply: FastifyReply): Promise<void> {
    await this.send(reply, p, id, { kind: parseKind(name, INPUT_NAMES, 'input') });
  }

  @Put(':id/frames/:frame/input')
  @RequireScope('submit')
  @HttpCode(204)
  @ApiOperation({
    summary: "Upload a frame's sketch to a shot awaiting its uploads",
    description: 'The `uploads[].url` of a submit with `frames: {upload: N}` when the API takes the uploads itself. The body is the image; `start` checks it.',
  })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'frame', description: '1-based' })
  @ApiConsumes(...IMAGE_TYPES, 'application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 204, description: 'Stored' })
  @ApiResponse({ status: 400, description: 'Not a frame number', type: ErrorDto })
  @ApiResponse({ status: 404, description: 'No such shot in this project, or no such frame', type: ErrorDto })
  @ApiResponse({ status: 409, description: 'The shot no longer awaits uploads', type: ErrorDto })
  @ApiResponse({ status: 413, type: ErrorDto })
  @ApiResponse({ status: 415, description: 'The body is not image bytes', type: ErrorDto })
  async uploadFrame(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('frame') frame: string, @Body() body: unknown): Promise<void> {
    const file: ShotFile = { kind: 'input', frame: parseFrame(frame) };
    await this.shots.upload(id, p.project, file, imageBody(body));
  }

  @Put(':id/inputs/:name')
  @RequireScope('submit')
  @HttpCode(204)
  @ApiOperation({ summary: "Upload a shot's reference or background while it awaits its uploads" })
  @ApiParam({ name: 'id' })
  @ApiParam({ name: 'name', enum: INPUT_NAMES })
  @ApiConsumes(...IMAGE_TYPES, 'application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 204, description: 'Stored' })
  @ApiResponse({ status: 404, type: ErrorDto })
  @ApiResponse({ status: 409, description: 'The shot no longer awaits uploads', type: ErrorDto })
  @ApiResponse({ status: 413, type: ErrorDto })
  @ApiResponse({ status: 415, description: 'The body is not image bytes', type: ErrorDto })
  async uploadInput(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Param('name') name: string, @Body() body: unknown): Promise<void> {
    await this.shots.upload(id, p.project, { kind: parseKind(name, INPUT_NAMES, 'input') }, imageBody(body));
  }

  private async send(reply: FastifyReply, p: Principal, id: string, file: ShotFile): Promise<void> {
    const { body, contentType, name } = await this.shots.openFile(id, p.project, file);
    // A take's output never changes (a rerun writes the same bytes), and a re-render's new take is
    // linked with `?take=<round>`, so an output's URL names one take; inputs may change until start.
    const cache = file.kind === 'input' || file.kind === 'reference' || file.kind === 'background' ? 'private, no-cache' : 'private, max-age=3600';
    void reply
      .header('content-type', contentType)
      .header('cache-control', cache)
      .header('content-disposition', `inline; filename="${name.replace(/[^\w.-]/g, '_')}"`)
      .send(body);
  }
}

/** The raw body an image content type was parsed into (app.ts); anything else is a 415. */
function imageBody(body: unknown): Uint8Array {
  if (Buffer.isBuffer(body)) return body;
  throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the image bytes as the body, with Content-Type image/png (or image/jpeg, image/webp, application/octet-stream)', 'body');
}
