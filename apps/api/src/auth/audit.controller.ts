/** /v1/audit: the project's mutating calls, newest first. */
import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ZodValidationPipe } from 'nestjs-zod';
import { auditQuerySchema, type AuditPage, type AuditQuery } from '@celfarm/contract';
import type { AuditLog } from '@celfarm/tenancy';
import { ErrorDto } from '../core/api-error.ts';
import { AuditPageDto } from './auth.dto.ts';
import { CurrentPrincipal, RequireScope, type Principal } from './principal.ts';
import { AUDIT_LOG } from './tokens.ts';

@ApiTags('keys')
@Controller('v1/audit')
@RequireScope('admin')
export class AuditController {
  constructor(@Inject(AUDIT_LOG) private readonly audit: AuditLog) {}

  @Get()
  @ApiOperation({ summary: 'Audit log: every POST/PUT/PATCH/DELETE made with a key of this project (refusals included), newest first' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–1000, default 100' })
  @ApiQuery({ name: 'before', required: false, type: String, description: '`next` of the previous page' })
  @ApiResponse({ status: 200, type: AuditPageDto })
  @ApiResponse({ status: 400, type: ErrorDto })
  list(@CurrentPrincipal() p: Principal, @Query(new ZodValidationPipe(auditQuerySchema)) q: AuditQuery): Promise<AuditPage> {
    return this.audit.list(p.project, { limit: q.limit, ...(q.before ? { before: q.before } : {}) });
  }
}
