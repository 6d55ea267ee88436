import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * The COCO detection format as pycocotools and labelling tools read it: the fields they require,
 * their types, and the references between them (ids unique, every annotation on a known image and
 * category, boxes inside their image, every image file present).
 */
const cocoSchema = z.object({
  info: z.object({}).passthrough().optional(),
  licenses: z.array(z.unknown()).optional(),
  images: z.array(
    z.object({ id: z.number().int(), file_name: z.string().min(1), width: z.number().int().positive(), height: z.number().int().positive() }).passthrough(),
  ),
  annotations: z.array(
    z
      .object({
        id: z.number().int(),
        image_id: z.number().int(),
        category_id: z.number().int(),
        bbox: z.tuple([z.number().min(0), z.number().min(0), z.number().positive(), z.number().positive()]),
        area: z.number().nonnegative(),
        iscrowd: z.union([z.literal(0), z.literal(1)]),
      })
      .passthrough(),
  ),
  categories: z.array(z.object({ id: z.number().int(), name: z.string().min(1), supercategory: z.string().optional() }).passthrough()).min(1),
});

export type Coco = z.output<typeof cocoSchema>;

/** Parses DIR/annotations.json and throws on the first problem; returns the dataset. */
export function checkCoco(dir: string): Coco {
  const coco = cocoSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'annotations.json'), 'utf8')));
  const unique = (ids: number[], what: string) => {
    if (new Set(ids).size !== ids.length) throw new Error(`${what} ids are not unique`);
  };
  unique(
    coco.images.map((image) => image.id),
    'image',
  );
  unique(
    coco.annotations.map((annotation) => annotation.id),
    'annotation',
  );
  unique(
    coco.categories.map((category) => category.id),
    'category',
  );
  const images = new Map(coco.images.map((image) => [image.id, image]));
  const categories = new Set(coco.categories.map((category) => category.id));
  for (const image of coco.images) {
    if (!fs.existsSync(path.join(dir, image.file_name))) throw new Error(`image ${image.id}: ${image.file_name} is missing`);
  }
  for (const annotation of coco.annotations) {
    const image = images.get(annotation.image_id);
    if (!image) throw new Error(`annotation ${annotation.id}: unknown image ${annotation.image_id}`);
    if (!categories.has(annotation.category_id)) throw new Error(`annotation ${annotation.id}: unknown category ${annotation.category_id}`);
    const [x, y, w, h] = annotation.bbox;
    if (x + w > image.width + 0.01 || y + h > image.height + 0.01)
      throw new Error(`annotation ${annotation.id}: bbox ${annotation.bbox} outside ${image.width}x${image.height}`);
  }
  return coco;
}
