import { Module } from '@nestjs/common';
import { QaController } from './qa.controller.ts';

@Module({ controllers: [QaController] })
export class QaModule {}
