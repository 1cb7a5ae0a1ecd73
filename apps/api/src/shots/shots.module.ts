import { Module } from '@nestjs/common';
import { ShotAccess } from './shot-access.ts';
import { ShotFilesController } from './shot-files.controller.ts';
import { ShotIntake } from './shot-intake.ts';
import { ShotLifecycle } from './shot-lifecycle.ts';
import { ShotUploads } from './shot-uploads.ts';
import { ShotViews } from './shot-views.ts';
import { ShotsController } from './shots.controller.ts';
import { ShotsService } from './shots.service.ts';

@Module({
  controllers: [ShotsController, ShotFilesController],
  providers: [ShotAccess, ShotViews, ShotUploads, ShotIntake, ShotLifecycle, ShotsService],
})
export class ShotsModule {}
