/** /v1/session, /v1/keys and /v1/audit in the OpenAPI document: nestjs-zod DTOs of the wire contract (@celfarm/contract). */
import { createZodDto } from 'nestjs-zod';
import { auditPageSchema, createdKeySchema, createKeySchema, keyListSchema, signInSchema, whoAmISchema } from '@celfarm/contract';

export class SignInDto extends createZodDto(signInSchema) {}
export class WhoAmIDto extends createZodDto(whoAmISchema) {}
export class CreateKeyDto extends createZodDto(createKeySchema) {}
export class CreatedKeyDto extends createZodDto(createdKeySchema) {}
export class KeyListDto extends createZodDto(keyListSchema) {}
export class AuditPageDto extends createZodDto(auditPageSchema) {}
