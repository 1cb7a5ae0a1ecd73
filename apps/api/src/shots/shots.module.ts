import { Module } from '@nestjs/common';
import { ShotsController } from './shots.controller.ts';
import { ShotsService } from './shots.service.ts';

@Module({ controllers: [ShotsController], providers: [ShotsService] })
export class ShotsModule {}
