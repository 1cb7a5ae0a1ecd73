import { Module } from '@nestjs/common';
import { ShotFilesController } from './shot-files.controller.ts';
import { ShotsController } from './shots.controller.ts';
import { ShotsService } from './shots.service.ts';

@Module({ controllers: [ShotsController, ShotFilesController], providers: [ShotsService] })
export class ShotsModule {}
