/** /v1/keys: an admin key manages the keys of its own project. Tokens are shown once, at creation. */
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ZodValidationPipe } from 'nestjs-zod';
import { createKeySchema, type CreateKey, type CreatedKey, type KeyList, type KeyView } from '@celfarm/contract';
import type { ApiKey, KeyStore } from '@celfarm/tenancy';
import { ErrorDto, notFound } from '../core/api-error.ts';
import { CreateKeyDto, CreatedKeyDto, KeyListDto } from './auth.dto.ts';
import { CurrentPrincipal, RequireScope, type Principal } from './principal.ts';
import { KEY_STORE } from './tokens.ts';

const view = (k: ApiKey): KeyView => ({
  id: k.id,
  name: k.name,
  scopes: k.scopes,
  createdAt: k.createdAt,
  ...(k.revokedAt ? { revokedAt: k.revokedAt } : {}),
  ...(k.rateLimit !== undefined ? { rateLimit: k.rateLimit } : {}),
});

@ApiTags('keys')
@Controller('v1/keys')
@RequireScope('admin')
export class KeysController {
  constructor(@Inject(KEY_STORE) private readonly keys: KeyStore) {}

  @Post()
  @ApiOperation({ summary: "Create an API key in the caller's project; the answer is the only place its token appears" })
  @ApiBody({ type: CreateKeyDto })
  @ApiResponse({ status: 201, type: CreatedKeyDto })
  @ApiResponse({ status: 400, type: ErrorDto })
  async create(@CurrentPrincipal() p: Principal, @Body(new ZodValidationPipe(createKeySchema)) body: CreateKey): Promise<CreatedKey> {
    const { key, token } = await this.keys.create(p.project, body.name, body.scopes, body.rateLimit);
    return { ...view(key), token };
  }

  @Get()
  @ApiOperation({ summary: "The project's keys, revoked ones included (never a token or a hash)" })
  @ApiResponse({ status: 200, type: KeyListDto })
  async list(@CurrentPrincipal() p: Principal): Promise<KeyList> {
    return { keys: (await this.keys.list(p.project)).map(view) };
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a key: refused from its next request on, its sessions included (idempotent)' })
  @ApiParam({ name: 'id' })
  @ApiResponse({ status: 204 })
  @ApiResponse({ status: 404, type: ErrorDto })
  async revoke(@CurrentPrincipal() p: Principal, @Param('id') id: string): Promise<void> {
    if (!(await this.keys.revoke(p.project, id))) throw notFound('API key', id);
  }
}
