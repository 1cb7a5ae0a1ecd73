import { Module } from '@nestjs/common';
import { WorkersController } from './workers.controller.ts';
import { WorkersService } from './workers.service.ts';

@Module({ controllers: [WorkersController], providers: [WorkersService] })
export class WorkersModule {}
