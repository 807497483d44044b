ALTER TABLE items ADD CONSTRAINT items_price_not_negative CHECK (price >= 0);
